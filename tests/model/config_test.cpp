// ModelConfig: presets, validation messages that name the field, JSON and config.json forms.
#include "model/config.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "model/hf_config.h"

namespace tandem::model {
namespace {

// Runs f, expects an Error, and checks that its message contains every fragment.
template <typename F>
void expect_error(F&& f, std::initializer_list<const char*> fragments) {
    try {
        f();
        FAIL() << "expected an Error";
    } catch (const Error& e) {
        for (const char* fragment : fragments)
            EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos)
                << "message '" << e.what() << "' lacks '" << fragment << "'";
    }
}

TEST(ModelConfig, PresetsAreValidAndHaveTheirPublishedShapes) {
    for (const auto& name : preset_names()) EXPECT_NO_THROW(preset_config(name)) << name;
    const ModelConfig llama = preset_config("llama-15m");
    EXPECT_EQ(llama.d_model, 288);
    EXPECT_EQ(llama.n_layers, 6);
    EXPECT_EQ(llama.n_heads, 6);
    EXPECT_EQ(llama.n_heads_kv, 6);
    EXPECT_EQ(llama.d_ffn, 768);
    EXPECT_EQ(llama.vocab_size, 32000);
    EXPECT_EQ(llama.max_seq_len, 256);
    const ModelConfig gpt2 = preset_config("gpt2-124m");
    EXPECT_EQ(gpt2.family, Family::Gpt2);
    EXPECT_EQ(gpt2.d_model, 768);
    EXPECT_EQ(gpt2.vocab_size, 50257);
    EXPECT_EQ(gpt2.max_seq_len, 1024);
    const ModelConfig qwen = preset_config("qwen3-tiny");
    EXPECT_TRUE(qwen.qk_norm);
    EXPECT_LT(qwen.n_heads_kv, qwen.n_heads);
}

TEST(ModelConfig, UnknownPresetListsTheKnownOnes) {
    expect_error([] { preset_config("llama-7b"); }, {"llama-7b", "tiny", "gpt2-124m"});
}

TEST(ModelConfig, RejectsHeadsNotDivisibleByKvHeads) {
    ModelConfig c = preset_config("tiny");
    c.n_heads = 6;
    c.n_heads_kv = 4;
    expect_error([&] { c.validate(); }, {"n_heads (6)", "n_heads_kv (4)"});
}

TEST(ModelConfig, RejectsZeroSizes) {
    for (auto field : {&ModelConfig::n_layers, &ModelConfig::d_model, &ModelConfig::d_ffn,
                       &ModelConfig::vocab_size, &ModelConfig::head_dim,
                       &ModelConfig::max_seq_len, &ModelConfig::n_heads_kv}) {
        ModelConfig c = preset_config("tiny");
        c.*field = 0;
        EXPECT_THROW(c.validate(), Error);
    }
    ModelConfig c = preset_config("tiny");
    c.d_ffn = 0;
    expect_error([&] { c.validate(); }, {"d_ffn", "0"});
}

TEST(ModelConfig, RejectsOddHeadDimWithRope) {
    ModelConfig c = preset_config("tiny");
    c.head_dim = 15;
    expect_error([&] { c.validate(); }, {"head_dim (15)", "RoPE"});
}

TEST(ModelConfig, RejectsVocabularyBeyondTheTokenDtype) {
    ModelConfig c = preset_config("tiny");
    c.vocab_size = int64_t{1} << 31;
    expect_error([&] { c.validate(); }, {"vocab_size (2147483648)", "i32"});
}

TEST(ModelConfig, RejectsGpt2WithMismatchedHeadsOrGqa) {
    ModelConfig c = preset_config("gpt2-124m");
    c.head_dim = 32;
    expect_error([&] { c.validate(); }, {"head_dim (32)", "d_model (768)"});
    c = preset_config("gpt2-124m");
    c.n_heads_kv = 4;
    expect_error([&] { c.validate(); }, {"n_heads_kv (4)"});
}

TEST(ModelConfig, RejectsNonPositiveEps) {
    ModelConfig c = preset_config("tiny");
    c.norm_eps = 0;
    expect_error([&] { c.validate(); }, {"norm_eps"});
}

TEST(ModelConfig, JsonRoundTrips) {
    for (const auto& name : preset_names()) {
        const ModelConfig c = preset_config(name);
        const ModelConfig back = config_from_json(config_to_json(c));
        EXPECT_EQ(config_to_json(back), config_to_json(c)) << name;
    }
}

TEST(ModelConfig, JsonNamesTheMissingOrMistypedKey) {
    auto j = config_to_json(preset_config("tiny"));
    j.erase("n_heads_kv");
    expect_error([&] { config_from_json(j); }, {"n_heads_kv"});
    j = config_to_json(preset_config("tiny"));
    j["d_model"] = "wide";
    expect_error([&] { config_from_json(j); }, {"d_model", "wrong type"});
    j = config_to_json(preset_config("tiny"));
    j["family"] = "mamba";
    expect_error([&] { config_from_json(j); }, {"mamba", "gpt2 or llama"});
}

TEST(ModelConfig, JsonKeepsQkvBiasAndReadsItsAbsenceAsFalse) {
    ModelConfig c = preset_config("tiny");
    c.qkv_bias = true;
    auto j = config_to_json(c);
    EXPECT_EQ(j["qkv_bias"], true);
    EXPECT_TRUE(config_from_json(j).qkv_bias);
    j.erase("qkv_bias");  // a config written before the key existed
    EXPECT_FALSE(config_from_json(j).qkv_bias);
}

TEST(ModelConfig, RejectsQkvBiasOnGpt2) {
    ModelConfig c = preset_config("gpt2-124m");
    c.qkv_bias = true;
    expect_error([&] { c.validate(); }, {"qkv_bias", "gpt2"});
}

TEST(HfConfig, ReadsGpt2Config) {
    const auto j = nlohmann::json::parse(R"({
        "model_type": "gpt2", "n_embd": 768, "n_layer": 12, "n_head": 12, "n_inner": null,
        "n_positions": 1024, "vocab_size": 50257, "layer_norm_epsilon": 1e-05,
        "activation_function": "gelu_new"})");
    const ModelConfig c = config_from_hf_json(j);
    EXPECT_EQ(config_to_json(c), config_to_json(preset_config("gpt2-124m")));
}

TEST(HfConfig, ReadsTheContextFromNCtxWhenNPositionsIsAbsent) {
    auto j = config_to_hf_json(preset_config("gpt2-124m"));
    j.erase("n_positions");
    j["n_ctx"] = 512;
    EXPECT_EQ(config_from_hf_json(j).max_seq_len, 512);
    j.erase("n_ctx");
    expect_error([&] { config_from_hf_json(j); }, {"n_ctx"});
}

TEST(HfConfig, ReadsQwen3ConfigWithQkNormAndGqa) {
    const auto j = nlohmann::json::parse(R"({
        "model_type": "qwen3", "hidden_size": 1024, "num_hidden_layers": 28,
        "num_attention_heads": 16, "num_key_value_heads": 8, "head_dim": 128,
        "intermediate_size": 3072, "vocab_size": 151936, "max_position_embeddings": 40960,
        "rms_norm_eps": 1e-06, "rope_theta": 1000000, "tie_word_embeddings": true,
        "hidden_act": "silu", "attention_bias": false, "rope_scaling": null})");
    const ModelConfig c = config_from_hf_json(j);
    EXPECT_TRUE(c.qk_norm);
    EXPECT_EQ(c.head_dim, 128);
    EXPECT_EQ(c.n_heads_kv, 8);
    EXPECT_EQ(c.d_ffn, 3072);
    EXPECT_FLOAT_EQ(c.rope_theta, 1e6f);
    EXPECT_TRUE(c.tie_embeddings);
}

TEST(HfConfig, ReadsQwen2ConfigWithQkvBiases) {
    // Qwen2.5-0.5B-Instruct's config.json, trimmed of keys tandem does not read.
    const auto j = nlohmann::json::parse(R"({
        "architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2", "hidden_act": "silu",
        "hidden_size": 896, "intermediate_size": 4864, "max_position_embeddings": 32768,
        "max_window_layers": 21, "num_attention_heads": 14, "num_hidden_layers": 24,
        "num_key_value_heads": 2, "rms_norm_eps": 1e-06, "rope_theta": 1000000.0,
        "sliding_window": 32768, "tie_word_embeddings": true, "torch_dtype": "bfloat16",
        "use_sliding_window": false, "vocab_size": 151936})");
    const ModelConfig c = config_from_hf_json(j);
    EXPECT_TRUE(c.qkv_bias);
    EXPECT_FALSE(c.qk_norm);
    EXPECT_EQ(c.head_dim, 64);  // hidden_size / num_attention_heads
    EXPECT_EQ(c.n_heads_kv, 2);
    EXPECT_FLOAT_EQ(c.rope_theta, 1e6f);
    EXPECT_TRUE(c.tie_embeddings);
    const auto back = config_to_hf_json(c);
    EXPECT_EQ(back["model_type"], "qwen2");
    EXPECT_EQ(back["architectures"][0], "Qwen2ForCausalLM");
    EXPECT_EQ(back["use_sliding_window"], false);
    EXPECT_EQ(config_to_json(config_from_hf_json(back)), config_to_json(c));
}

TEST(HfConfig, ReadsLlama2ConfigWithoutHeadDimOrScaling) {
    // Llama-2-7b-hf's config.json, trimmed of keys tandem does not read.
    const auto j = nlohmann::json::parse(R"({
        "architectures": ["LlamaForCausalLM"], "hidden_act": "silu", "hidden_size": 4096,
        "intermediate_size": 11008, "max_position_embeddings": 4096, "model_type": "llama",
        "num_attention_heads": 32, "num_hidden_layers": 32, "num_key_value_heads": 32,
        "pretraining_tp": 1, "rms_norm_eps": 1e-05, "rope_scaling": null,
        "tie_word_embeddings": false, "torch_dtype": "float16", "vocab_size": 32000})");
    const ModelConfig c = config_from_hf_json(j);
    EXPECT_EQ(c.head_dim, 128);
    EXPECT_EQ(c.rope_theta, 10000.0f);  // LlamaConfig's default
    EXPECT_FALSE(c.rope_scaling.is_on());
    EXPECT_FALSE(c.qkv_bias);
    EXPECT_FALSE(c.qk_norm);
    EXPECT_FALSE(c.tie_embeddings);
    EXPECT_EQ(config_to_hf_json(c)["rope_scaling"], nullptr);
}

TEST(HfConfig, ReadsLlama32ConfigWithLlama3RopeScaling) {
    // Llama-3.2-1B's config.json, trimmed of keys tandem does not read.
    const auto j = nlohmann::json::parse(R"({
        "architectures": ["LlamaForCausalLM"], "attention_bias": false, "head_dim": 64,
        "hidden_act": "silu", "hidden_size": 2048, "intermediate_size": 8192,
        "max_position_embeddings": 131072, "mlp_bias": false, "model_type": "llama",
        "num_attention_heads": 32, "num_hidden_layers": 16, "num_key_value_heads": 8,
        "pretraining_tp": 1, "rms_norm_eps": 1e-05,
        "rope_scaling": {"factor": 32.0, "high_freq_factor": 4.0, "low_freq_factor": 1.0,
                         "original_max_position_embeddings": 8192, "rope_type": "llama3"},
        "rope_theta": 500000.0, "tie_word_embeddings": true, "torch_dtype": "bfloat16",
        "vocab_size": 128256})");
    const ModelConfig c = config_from_hf_json(j);
    EXPECT_EQ(c.rope_theta, 500000.0f);
    EXPECT_EQ(c.rope_scaling.factor, 32.0f);
    EXPECT_EQ(c.rope_scaling.low_freq_factor, 1.0f);
    EXPECT_EQ(c.rope_scaling.high_freq_factor, 4.0f);
    EXPECT_EQ(c.rope_scaling.original_max_positions, 8192);
    EXPECT_EQ(c.rope().theta, 500000.0f);
    EXPECT_EQ(c.rope().scaling.factor, 32.0f);
    EXPECT_FALSE(c.qkv_bias);
    const auto back = config_to_hf_json(c);
    EXPECT_EQ(back["rope_scaling"]["rope_type"], "llama3");
    EXPECT_EQ(back["rope_scaling"]["original_max_position_embeddings"], 8192);
    EXPECT_EQ(config_to_json(config_from_hf_json(back)), config_to_json(c));
    EXPECT_EQ(config_to_json(config_from_json(config_to_json(c))), config_to_json(c));
}

TEST(HfConfig, ReadsTheOlderTypeKeyAndDefaultAsPlainRope) {
    auto j = config_to_hf_json(preset_config("tiny"));
    j["rope_theta"] = 500000;  // an integer in the file
    j["rope_scaling"] = {{"type", "llama3"}, {"factor", 8},
                         {"low_freq_factor", 1}, {"high_freq_factor", 4},
                         {"original_max_position_embeddings", 8192}};
    ModelConfig c = config_from_hf_json(j);
    EXPECT_EQ(c.rope_theta, 500000.0f);
    EXPECT_EQ(c.rope_scaling.factor, 8.0f);
    j["rope_scaling"] = {{"rope_type", "default"}};
    EXPECT_FALSE(config_from_hf_json(j).rope_scaling.is_on());
    j["rope_scaling"] = nullptr;
    EXPECT_FALSE(config_from_hf_json(j).rope_scaling.is_on());
}

TEST(HfConfig, RefusesOtherRopeScalingTypesByName) {
    auto j = config_to_hf_json(preset_config("tiny"));
    for (const char* type : {"linear", "dynamic", "yarn", "longrope"}) {
        j["rope_scaling"] = {{"rope_type", type}, {"factor", 2.0}};
        expect_error([&] { config_from_hf_json(j); }, {"rope_scaling", type, "llama3"});
    }
    j["rope_scaling"] = {{"rope_type", "llama3"}, {"factor", 8.0}, {"low_freq_factor", 1.0},
                         {"high_freq_factor", 4.0}};
    expect_error([&] { config_from_hf_json(j); }, {"original_max_position_embeddings"});
    j["rope_scaling"] = {{"factor", 8.0}};
    expect_error([&] { config_from_hf_json(j); }, {"rope_type"});
    j["rope_scaling"] = {{"rope_type", "llama3"}, {"factor", 8.0}, {"low_freq_factor", 4.0},
                         {"high_freq_factor", 4.0}, {"original_max_position_embeddings", 8192}};
    expect_error([&] { config_from_hf_json(j); }, {"high_freq_factor (4)", "low_freq_factor (4)"});
}

TEST(ModelConfig, ValidatesRopeScaling) {
    ModelConfig c = preset_config("tiny");
    c.rope_scaling = {.factor = 8.0f, .low_freq_factor = 1.0f, .high_freq_factor = 4.0f,
                      .original_max_positions = 0};
    expect_error([&] { c.validate(); }, {"rope_scaling.original_max_positions", "0"});
    c.rope_scaling.original_max_positions = 8192;
    c.rope_scaling.factor = -1.0f;
    expect_error([&] { c.validate(); }, {"rope_scaling.factor", "-1"});
    c = preset_config("gpt2-124m");
    c.rope_scaling = {8.0f, 1.0f, 4.0f, 8192};
    expect_error([&] { c.validate(); }, {"rope_scaling", "gpt2"});
    auto j = config_to_json(preset_config("tiny"));
    j["rope_scaling"] = {{"factor", 0.0}, {"low_freq_factor", 1.0}, {"high_freq_factor", 4.0},
                         {"original_max_positions", 8192}};
    expect_error([&] { config_from_json(j); }, {"rope_scaling.factor is 0"});
}

TEST(HfConfig, RefusesSlidingWindowAttention) {
    auto j = config_to_hf_json(preset_config("qwen3-tiny"));
    j["use_sliding_window"] = true;
    expect_error([&] { config_from_hf_json(j); }, {"use_sliding_window", "full causal"});
}

TEST(HfConfig, RefusesConfigsNoHuggingFaceFamilyExpresses) {
    ModelConfig c = preset_config("qwen3-tiny");
    c.qkv_bias = true;  // qk-norm and biases together
    expect_error([&] { config_to_hf_json(c); }, {"qk_norm", "qkv_bias"});
    c = preset_config("tiny");
    c.qkv_bias = true;
    c.head_dim = 32;  // Qwen2 cannot say head_dim * n_heads != hidden_size
    expect_error([&] { config_to_hf_json(c); }, {"head_dim (32)", "d_model (64)"});
}

TEST(HfConfig, RoundTripsEveryPreset) {
    for (const auto& name : preset_names()) {
        const ModelConfig c = preset_config(name);
        EXPECT_EQ(config_to_json(config_from_hf_json(config_to_hf_json(c))), config_to_json(c))
            << name;
    }
}

TEST(HfConfig, RejectsWhatTandemDoesNotImplement) {
    auto j = config_to_hf_json(preset_config("tiny"));
    j["rope_scaling"] = {{"type", "linear"}, {"factor", 2.0}};
    expect_error([&] { config_from_hf_json(j); }, {"rope_scaling", "linear"});
    j = config_to_hf_json(preset_config("tiny"));
    j["attention_bias"] = true;
    expect_error([&] { config_from_hf_json(j); }, {"attention_bias", "o_proj", "qwen2"});
    j = config_to_hf_json(preset_config("tiny"));
    j["model_type"] = "mistral";
    expect_error([&] { config_from_hf_json(j); }, {"mistral"});
    j = config_to_hf_json(preset_config("tiny"));
    j.erase("hidden_size");
    expect_error([&] { config_from_hf_json(j); }, {"hidden_size"});
}

}  // namespace
}  // namespace tandem::model

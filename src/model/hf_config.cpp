// Hugging Face config.json <-> ModelConfig. Key names follow transformers' GPT2Config,
// LlamaConfig, Qwen2Config and Qwen3Config; defaults are theirs where a key is optional.
#include "model/hf_config.h"

#include <nlohmann/json.hpp>

#include "core/error.h"

namespace tandem::model {

namespace {

template <typename T>
T hf_get(const nlohmann::json& json, const char* key) {
    auto it = json.find(key);
    if (it == json.end() || it->is_null())
        throw Error("config.json: missing key '", key, "'");
    try {
        return it->get<T>();
    } catch (const nlohmann::json::exception&) {
        throw Error("config.json: key '", key, "' has the wrong type (", it->type_name(), ")");
    }
}

template <typename T>
T hf_get_or(const nlohmann::json& json, const char* key, T fallback) {
    auto it = json.find(key);
    if (it == json.end() || it->is_null()) return fallback;
    return hf_get<T>(json, key);
}

void reject_if_true(const nlohmann::json& json, const char* key) {
    if (hf_get_or<bool>(json, key, false))
        throw Error("config.json: ", key, " is true, which tandem does not implement");
}

ModelConfig gpt2_from_hf(const nlohmann::json& j) {
    ModelConfig c;
    c.family = Family::Gpt2;
    c.d_model = hf_get<int64_t>(j, "n_embd");
    c.n_layers = hf_get<int64_t>(j, "n_layer");
    c.n_heads = hf_get<int64_t>(j, "n_head");
    c.n_heads_kv = c.n_heads;
    c.head_dim = c.n_heads > 0 ? c.d_model / c.n_heads : 0;
    if (c.n_heads > 0 && c.head_dim * c.n_heads != c.d_model)
        throw Error("config.json: n_embd (", c.d_model, ") is not divisible by n_head (",
                    c.n_heads, ")");
    c.d_ffn = hf_get_or<int64_t>(j, "n_inner", 4 * c.d_model);  // null means 4 n_embd
    c.vocab_size = hf_get<int64_t>(j, "vocab_size");
    // Old GPT-2 configs name the context n_ctx; n_positions wins when both are present.
    c.max_seq_len = j.contains("n_positions") ? hf_get<int64_t>(j, "n_positions")
                                              : hf_get<int64_t>(j, "n_ctx");
    c.norm_eps = hf_get_or<float>(j, "layer_norm_epsilon", 1e-5f);
    c.tie_embeddings = hf_get_or<bool>(j, "tie_word_embeddings", true);
    const auto act = hf_get_or<std::string>(j, "activation_function", "gelu_new");
    if (act != "gelu_new" && act != "gelu_pytorch_tanh")
        throw Error("config.json: activation_function is '", act,
                    "' but tandem's GPT-2 uses the tanh GELU (gelu_new)");
    return c;
}

// rope_scaling: null, or an object whose "rope_type" (older files: "type") names the method.
// "default" is plain RoPE; "llama3" is read; every other method is refused by name.
backend::RopeScaling rope_scaling_from_hf(const nlohmann::json& j) {
    auto it = j.find("rope_scaling");
    if (it == j.end() || it->is_null()) return {};
    if (!it->is_object())
        throw Error("config.json: rope_scaling has the wrong type (", it->type_name(),
                    "; expected an object or null)");
    const nlohmann::json& s = *it;
    std::string type;
    if (s.contains("rope_type") && !s["rope_type"].is_null())
        type = hf_get<std::string>(s, "rope_type");
    else if (s.contains("type") && !s["type"].is_null())
        type = hf_get<std::string>(s, "type");
    else
        throw Error("config.json: rope_scaling has neither 'rope_type' nor 'type'");
    if (type == "default") return {};
    if (type != "llama3")
        throw Error("config.json: rope_scaling type '", type,
                    "' is not implemented (tandem reads 'llama3' and 'default'; linear, dynamic, "
                    "yarn, longrope and the others are not)");
    auto field = [&](const char* key) {
        if (!s.contains(key) || s[key].is_null())
            throw Error("config.json: rope_scaling of type llama3 lacks '", key, "'");
        return hf_get<double>(s, key);
    };
    return {.factor = float(field("factor")),
            .low_freq_factor = float(field("low_freq_factor")),
            .high_freq_factor = float(field("high_freq_factor")),
            .original_max_positions = int64_t(field("original_max_position_embeddings"))};
}

nlohmann::json rope_scaling_to_hf(const backend::RopeScaling& s) {
    if (!s.is_on()) return nullptr;
    return {{"rope_type", "llama3"},
            {"factor", s.factor},
            {"low_freq_factor", s.low_freq_factor},
            {"high_freq_factor", s.high_freq_factor},
            {"original_max_position_embeddings", s.original_max_positions}};
}

// The three Hugging Face families that map onto tandem's llama family.
enum class LlamaKind { Llama, Qwen2, Qwen3 };

ModelConfig llama_from_hf(const nlohmann::json& j, LlamaKind kind) {
    ModelConfig c;
    c.family = Family::Llama;
    c.d_model = hf_get<int64_t>(j, "hidden_size");
    c.n_layers = hf_get<int64_t>(j, "num_hidden_layers");
    c.n_heads = hf_get<int64_t>(j, "num_attention_heads");
    c.n_heads_kv = hf_get_or<int64_t>(j, "num_key_value_heads", c.n_heads);
    c.head_dim = hf_get_or<int64_t>(j, "head_dim", c.n_heads > 0 ? c.d_model / c.n_heads : 0);
    c.d_ffn = hf_get<int64_t>(j, "intermediate_size");
    c.vocab_size = hf_get<int64_t>(j, "vocab_size");
    c.max_seq_len = hf_get<int64_t>(j, "max_position_embeddings");
    c.norm_eps = hf_get_or<float>(j, "rms_norm_eps", 1e-6f);
    // Read as double: Llama 3 writes 500000.0, Qwen 1000000 (an integer); both are exact in f32.
    c.rope_theta = float(hf_get_or<double>(j, "rope_theta", 10000.0));
    c.rope_scaling = rope_scaling_from_hf(j);
    c.tie_embeddings = hf_get_or<bool>(j, "tie_word_embeddings", false);
    c.qk_norm = kind == LlamaKind::Qwen3;
    // Qwen2's q/k/v biases are fixed by its architecture (Qwen2Config has no key for them).
    c.qkv_bias = kind == LlamaKind::Qwen2;
    if (hf_get_or<bool>(j, "attention_bias", false))
        throw Error("config.json: attention_bias is true, which puts biases on q/k/v and on "
                    "o_proj; tandem implements q/k/v biases only (model_type qwen2)");
    reject_if_true(j, "mlp_bias");
    // Qwen2 and Qwen3 name sliding-window attention; tandem's attention is full causal.
    if (hf_get_or<bool>(j, "use_sliding_window", false))
        throw Error("config.json: use_sliding_window is true, but tandem's attention is full "
                    "causal attention (set use_sliding_window to false: the published Qwen2 and "
                    "Qwen3 models ship with it off)");
    const auto act = hf_get_or<std::string>(j, "hidden_act", "silu");
    if (act != "silu")
        throw Error("config.json: hidden_act is '", act, "' but tandem's Llama MLP uses silu");
    return c;
}

}  // namespace

ModelConfig config_from_hf_json(const nlohmann::json& json) {
    if (!json.is_object()) throw Error("config.json: expected a JSON object");
    const auto type = hf_get<std::string>(json, "model_type");
    ModelConfig c;
    if (type == "gpt2") {
        c = gpt2_from_hf(json);
    } else if (type == "llama") {
        c = llama_from_hf(json, LlamaKind::Llama);
    } else if (type == "qwen2") {
        c = llama_from_hf(json, LlamaKind::Qwen2);
    } else if (type == "qwen3") {
        c = llama_from_hf(json, LlamaKind::Qwen3);
    } else {
        throw Error("config.json: model_type is '", type,
                    "' (tandem reads gpt2, llama, qwen2, qwen3)");
    }
    c.validate();
    return c;
}

nlohmann::json config_to_hf_json(const ModelConfig& c) {
    if (c.family == Family::Gpt2) {
        return {{"model_type", "gpt2"},
                {"architectures", {"GPT2LMHeadModel"}},
                {"n_embd", c.d_model},
                {"n_layer", c.n_layers},
                {"n_head", c.n_heads},
                {"n_inner", c.d_ffn},
                {"n_positions", c.max_seq_len},
                {"n_ctx", c.max_seq_len},
                {"vocab_size", c.vocab_size},
                {"layer_norm_epsilon", c.norm_eps},
                {"activation_function", "gelu_new"},
                {"tie_word_embeddings", c.tie_embeddings}};
    }
    if (c.qk_norm && c.qkv_bias)
        throw Error("config.json: a model with both qk_norm and qkv_bias is no Hugging Face "
                    "family (Qwen3 has qk-norm and no biases, Qwen2 biases and no qk-norm)");
    if (c.qkv_bias && c.n_heads * c.head_dim != c.d_model)
        throw Error("config.json: Qwen2 has no head_dim key and derives it as hidden_size / "
                    "num_attention_heads, but head_dim (", c.head_dim, ") * n_heads (", c.n_heads,
                    ") != d_model (", c.d_model, ")");
    const char* type = c.qk_norm ? "qwen3" : c.qkv_bias ? "qwen2" : "llama";
    const char* arch = c.qk_norm    ? "Qwen3ForCausalLM"
                       : c.qkv_bias ? "Qwen2ForCausalLM"
                                    : "LlamaForCausalLM";
    nlohmann::json j = {
            {"model_type", type},
            {"architectures", {arch}},
            {"hidden_size", c.d_model},
            {"num_hidden_layers", c.n_layers},
            {"num_attention_heads", c.n_heads},
            {"num_key_value_heads", c.n_heads_kv},
            {"head_dim", c.head_dim},
            {"intermediate_size", c.d_ffn},
            {"vocab_size", c.vocab_size},
            {"max_position_embeddings", c.max_seq_len},
            {"rms_norm_eps", c.norm_eps},
            {"rope_theta", c.rope_theta},
            {"hidden_act", "silu"},
            {"rope_scaling", rope_scaling_to_hf(c.rope_scaling)},
            {"tie_word_embeddings", c.tie_embeddings}};
    if (c.qkv_bias) {
        j["use_sliding_window"] = false;
    } else {
        j["attention_bias"] = false;
    }
    return j;
}

}  // namespace tandem::model

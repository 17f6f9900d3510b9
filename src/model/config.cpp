// Validation, presets and the JSON form of ModelConfig.
#include "model/config.h"

#include <cmath>
#include <limits>

#include <nlohmann/json.hpp>

#include "core/error.h"

namespace tandem::model {

std::string_view family_name(Family family) { return family == Family::Gpt2 ? "gpt2" : "llama"; }

namespace {

Family family_from_name(std::string_view name) {
    if (name == "gpt2") return Family::Gpt2;
    if (name == "llama") return Family::Llama;
    throw Error("model config: family is '", name, "' (expected gpt2 or llama)");
}

void require_positive(const char* field, int64_t value) {
    if (value <= 0) throw Error("model config: ", field, " is ", value, " but must be positive");
}

void validate_rope_scaling(const backend::RopeScaling& s) {
    auto require = [](const char* field, float value) {
        if (!(value > 0.0f) || !std::isfinite(value))
            throw Error("model config: rope_scaling.", field, " is ", value,
                        " but must be positive and finite");
    };
    require("factor", s.factor);
    require("low_freq_factor", s.low_freq_factor);
    require("high_freq_factor", s.high_freq_factor);
    require_positive("rope_scaling.original_max_positions", s.original_max_positions);
    // The blend divides by their difference, and the band it covers must not be empty.
    if (!(s.high_freq_factor > s.low_freq_factor))
        throw Error("model config: rope_scaling.high_freq_factor (", s.high_freq_factor,
                    ") must exceed low_freq_factor (", s.low_freq_factor,
                    "), as in Llama 3's 4 and 1");
}

}  // namespace

void ModelConfig::validate() const {
    require_positive("n_layers", n_layers);
    require_positive("n_heads", n_heads);
    require_positive("n_heads_kv", n_heads_kv);
    require_positive("d_model", d_model);
    require_positive("head_dim", head_dim);
    require_positive("d_ffn", d_ffn);
    require_positive("vocab_size", vocab_size);
    require_positive("max_seq_len", max_seq_len);
    if (n_heads % n_heads_kv != 0)
        throw Error("model config: n_heads (", n_heads, ") is not divisible by n_heads_kv (",
                    n_heads_kv, "): each kv head must serve the same number of query heads");
    // Token ids are i32 on every backend.
    if (vocab_size > std::numeric_limits<int32_t>::max())
        throw Error("model config: vocab_size (", vocab_size,
                    ") does not fit the i32 token dtype (at most 2147483647)");
    if (!(norm_eps > 0.0f) || !std::isfinite(norm_eps))
        throw Error("model config: norm_eps is ", norm_eps, " but must be positive and finite");
    if (family == Family::Gpt2) {
        if (n_heads * head_dim != d_model)
            throw Error("model config: gpt2 needs n_heads * head_dim == d_model, but n_heads (",
                        n_heads, ") * head_dim (", head_dim, ") != d_model (", d_model, ")");
        if (n_heads_kv != n_heads)
            throw Error("model config: gpt2 has no grouped-query attention, but n_heads_kv (",
                        n_heads_kv, ") != n_heads (", n_heads, ")");
        if (qk_norm) throw Error("model config: qk_norm is true but gpt2 has no qk-norm");
        if (qkv_bias)
            throw Error("model config: qkv_bias is true but gpt2 already has a bias on every "
                        "product (qkv_bias is the Qwen2 variant of the llama family)");
        if (rope_scaling.is_on())
            throw Error("model config: rope_scaling is set but gpt2 has learned positions, "
                        "no RoPE");
    } else {
        if (head_dim % 2 != 0)
            throw Error("model config: head_dim (", head_dim,
                        ") is odd, but RoPE rotates pairs of dimensions (use an even head_dim)");
        if (!(rope_theta > 0.0f) || !std::isfinite(rope_theta))
            throw Error("model config: rope_theta is ", rope_theta, " but must be positive");
        if (rope_scaling.is_on()) validate_rope_scaling(rope_scaling);
    }
}

ModelConfig preset_config(std::string_view name) {
    ModelConfig c;
    if (name == "tiny") {  // a small Llama for tests and demos (byte-sized vocabulary)
        c = {.family = Family::Llama, .n_layers = 2, .n_heads = 4, .n_heads_kv = 2,
             .d_model = 64, .head_dim = 16, .d_ffn = 192, .vocab_size = 512, .max_seq_len = 256,
             .rope_theta = 10000.0f, .norm_eps = 1e-5f, .tie_embeddings = false};
    } else if (name == "llama-15m") {  // llama2.c's stories15M
        c = {.family = Family::Llama, .n_layers = 6, .n_heads = 6, .n_heads_kv = 6,
             .d_model = 288, .head_dim = 48, .d_ffn = 768, .vocab_size = 32000,
             .max_seq_len = 256, .rope_theta = 10000.0f, .norm_eps = 1e-5f,
             .tie_embeddings = true};
    } else if (name == "gpt2-124m") {
        c = {.family = Family::Gpt2, .n_layers = 12, .n_heads = 12, .n_heads_kv = 12,
             .d_model = 768, .head_dim = 64, .d_ffn = 3072, .vocab_size = 50257,
             .max_seq_len = 1024, .norm_eps = 1e-5f, .tie_embeddings = true};
    } else if (name == "qwen3-tiny") {  // Qwen3's shape in miniature: GQA, QK-norm, H*D != C
        c = {.family = Family::Llama, .n_layers = 2, .n_heads = 4, .n_heads_kv = 2,
             .d_model = 64, .head_dim = 32, .d_ffn = 192, .vocab_size = 512, .max_seq_len = 256,
             .rope_theta = 1000000.0f, .norm_eps = 1e-6f, .tie_embeddings = true,
             .qk_norm = true};
    } else {
        std::string names;
        for (const auto& n : preset_names()) names += (names.empty() ? "" : ", ") + n;
        throw Error("unknown model preset '", name, "' (known: ", names, ")");
    }
    c.validate();
    return c;
}

std::vector<std::string> preset_names() { return {"tiny", "llama-15m", "gpt2-124m", "qwen3-tiny"}; }

nlohmann::json config_to_json(const ModelConfig& c) {
    nlohmann::json scaling = nullptr;
    if (c.rope_scaling.is_on())
        scaling = {{"factor", c.rope_scaling.factor},
                   {"low_freq_factor", c.rope_scaling.low_freq_factor},
                   {"high_freq_factor", c.rope_scaling.high_freq_factor},
                   {"original_max_positions", c.rope_scaling.original_max_positions}};
    return {{"family", family_name(c.family)}, {"n_layers", c.n_layers},
            {"n_heads", c.n_heads},            {"n_heads_kv", c.n_heads_kv},
            {"d_model", c.d_model},            {"head_dim", c.head_dim},
            {"d_ffn", c.d_ffn},                {"vocab_size", c.vocab_size},
            {"max_seq_len", c.max_seq_len},    {"rope_theta", c.rope_theta},
            {"norm_eps", c.norm_eps},          {"tie_embeddings", c.tie_embeddings},
            {"qk_norm", c.qk_norm},            {"qkv_bias", c.qkv_bias},
            {"rope_scaling", scaling}};
}

namespace {

template <typename T>
T get_field(const nlohmann::json& json, const char* key) {
    auto it = json.find(key);
    if (it == json.end()) throw Error("model config: missing key '", key, "'");
    try {
        return it->get<T>();
    } catch (const nlohmann::json::exception&) {
        throw Error("model config: key '", key, "' has the wrong type (", it->type_name(), ")");
    }
}

// Keys added after the first checkpoints were written: absent means the old behaviour.
template <typename T>
T get_field_or(const nlohmann::json& json, const char* key, T fallback) {
    return json.contains(key) ? get_field<T>(json, key) : fallback;
}

}  // namespace

ModelConfig config_from_json(const nlohmann::json& json) {
    if (!json.is_object()) throw Error("model config: expected a JSON object");
    ModelConfig c;
    c.family = family_from_name(get_field<std::string>(json, "family"));
    c.n_layers = get_field<int64_t>(json, "n_layers");
    c.n_heads = get_field<int64_t>(json, "n_heads");
    c.n_heads_kv = get_field<int64_t>(json, "n_heads_kv");
    c.d_model = get_field<int64_t>(json, "d_model");
    c.head_dim = get_field<int64_t>(json, "head_dim");
    c.d_ffn = get_field<int64_t>(json, "d_ffn");
    c.vocab_size = get_field<int64_t>(json, "vocab_size");
    c.max_seq_len = get_field<int64_t>(json, "max_seq_len");
    c.rope_theta = get_field<float>(json, "rope_theta");
    c.norm_eps = get_field<float>(json, "norm_eps");
    c.tie_embeddings = get_field<bool>(json, "tie_embeddings");
    c.qk_norm = get_field<bool>(json, "qk_norm");
    c.qkv_bias = get_field_or<bool>(json, "qkv_bias", false);
    if (auto it = json.find("rope_scaling"); it != json.end() && !it->is_null()) {
        if (!it->is_object())
            throw Error("model config: key 'rope_scaling' has the wrong type (", it->type_name(),
                        "; expected an object or null)");
        c.rope_scaling = {.factor = get_field<float>(*it, "factor"),
                          .low_freq_factor = get_field<float>(*it, "low_freq_factor"),
                          .high_freq_factor = get_field<float>(*it, "high_freq_factor"),
                          .original_max_positions =
                              get_field<int64_t>(*it, "original_max_positions")};
        if (!c.rope_scaling.is_on())  // factor 0 would silently mean "no scaling"
            throw Error("model config: rope_scaling.factor is 0; write rope_scaling: null for "
                        "plain RoPE");
    }
    c.validate();
    return c;
}

}  // namespace tandem::model

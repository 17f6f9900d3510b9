// The shape of a model: family, sizes and numerics, validated once where it enters tandem.
// Owns the named presets and tandem's own JSON form; the Hugging Face config.json mapping
// lives in hf_config.h, the tensor layout in param_layout.h.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "backend/rope_params.h"

namespace tandem::model {

// Gpt2: learned positions, LayerNorm with biases, GELU MLP, biases on every product.
// Llama (also Qwen3 with qk_norm, Qwen2 with qkv_bias): RoPE, RMSNorm, SwiGLU MLP, no biases
// but the optional q/k/v ones.
enum class Family { Gpt2, Llama };

std::string_view family_name(Family family);  // "gpt2", "llama"

struct ModelConfig {
    Family family = Family::Llama;
    int64_t n_layers = 0;    // L
    int64_t n_heads = 0;     // H
    int64_t n_heads_kv = 0;  // Hkv; H % Hkv == 0 (grouped-query attention when Hkv < H)
    int64_t d_model = 0;     // C
    int64_t head_dim = 0;    // D; GPT-2 requires H * D == C
    int64_t d_ffn = 0;       // F
    int64_t vocab_size = 0;  // V
    int64_t max_seq_len = 0;
    float rope_theta = 10000.0f;  // Llama only (Llama 3: 500000, Qwen: 1000000)
    float norm_eps = 1e-5f;
    bool tie_embeddings = true;  // the LM head reuses the token embedding
    bool qk_norm = false;        // Qwen3: per-head RMSNorm of q and k before RoPE
    bool qkv_bias = false;       // Qwen2: biases on q_proj, k_proj, v_proj (not o_proj, not MLP)
    // Llama 3.1+'s rescaling of the RoPE frequencies (rope_scaling rope_type "llama3");
    // factor 0 (the default) means plain RoPE.
    backend::RopeScaling rope_scaling;

    bool has_bias() const { return family == Family::Gpt2; }
    bool has_learned_positions() const { return family == Family::Gpt2; }
    bool has_rope() const { return family == Family::Llama; }
    int64_t qkv_dim() const { return (n_heads + 2 * n_heads_kv) * head_dim; }  // (H + 2 Hkv) D
    backend::RopeParams rope() const { return {rope_theta, rope_scaling}; }

    // Throws Error naming the first field that is impossible, with the values involved.
    void validate() const;
};

// A validated copy of a named preset: "tiny", "llama-15m", "gpt2-124m", "qwen3-tiny".
ModelConfig preset_config(std::string_view name);
std::vector<std::string> preset_names();

// tandem's own JSON form: the field names of ModelConfig, with "family": "gpt2" | "llama" and
// "rope_scaling": null or {"factor", "low_freq_factor", "high_freq_factor",
// "original_max_positions"}. from_json validates and names the missing or mistyped key;
// "qkv_bias" and "rope_scaling" may be absent (configs written before they existed).
nlohmann::json config_to_json(const ModelConfig& config);
ModelConfig config_from_json(const nlohmann::json& json);

}  // namespace tandem::model

// The mapping between ModelConfig and a Hugging Face config.json (GPT2Config, LlamaConfig,
// Qwen2Config, Qwen3Config). It lives in model/ because io/ may not know about ModelConfig; reading the file
// itself is the caller's job (plain JSON in, plain JSON out).
#pragma once

#include <nlohmann/json_fwd.hpp>

#include "model/config.h"

namespace tandem::model {

// model_type "gpt2", "llama", "qwen2" (turns on qkv_bias) or "qwen3" (turns on qk_norm). Fills
// HF's defaults for optional keys, rejects features tandem does not implement (attention_bias,
// use_sliding_window, rope_scaling other than llama3, ...) naming the key, and validates the
// result.
ModelConfig config_from_hf_json(const nlohmann::json& json);
// The config.json that Hugging Face transformers would load as the same model: qk_norm writes
// qwen3, qkv_bias qwen2, neither llama. Throws Error for a config no HF family expresses.
nlohmann::json config_to_hf_json(const ModelConfig& config);

}  // namespace tandem::model

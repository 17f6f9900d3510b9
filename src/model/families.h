// The per-family pieces that differ by name and shape only: the parameter table (Hugging Face
// names, roles, init rules) and the views bound from it. The block wiring is shared (model.cpp).
#pragma once

#include "model/config.h"
#include "model/param_layout.h"
#include "model/weights.h"

namespace tandem::model {

ParamLayout gpt2_layout(const ModelConfig& config);
ModelWeights gpt2_weights(const ModelConfig& config, const ParamLayout& layout, Tensor flat);

ParamLayout llama_layout(const ModelConfig& config);
ModelWeights llama_weights(const ModelConfig& config, const ParamLayout& layout, Tensor flat);

}  // namespace tandem::model

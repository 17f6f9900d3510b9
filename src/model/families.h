// The per-family pieces that differ by name and shape only: the parameter table (Hugging Face
// names, roles, init rules) and the views bound from it. The block wiring is shared (model.cpp).
#pragma once

#include "model/config.h"
#include "model/param_layout.h"
#include "model/weight_views.h"

namespace tandem::model {

ParamLayout gpt2_layout(const ModelConfig& config);
ModelWeights gpt2_weights(const ModelConfig& config, const PlacedLayout& placed);

ParamLayout llama_layout(const ModelConfig& config);
ModelWeights llama_weights(const ModelConfig& config, const PlacedLayout& placed);

// The views of a placed layout, by the config's family.
ModelWeights bind_weights(const ModelConfig& config, const PlacedLayout& placed);

}  // namespace tandem::model

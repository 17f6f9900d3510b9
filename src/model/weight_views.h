// Named views of one flat parameter buffer (weights or gradients: the same table binds both),
// so forward code reads `block.attn.qkv`, never an offset. Family files build them.
#pragma once

#include <vector>

#include "model/layers/attention.h"
#include "model/layers/embedding.h"
#include "model/layers/mlp.h"
#include "model/layers/norm.h"

namespace tandem::model {

struct BlockWeights {
    Norm attn_norm;  // ln_1 / input_layernorm
    AttentionWeights attn;
    Norm mlp_norm;   // ln_2 / post_attention_layernorm
    MlpWeights mlp;
};

struct ModelWeights {
    Embedding embed;
    std::vector<BlockWeights> blocks;
    Norm final_norm;  // ln_f / model.norm
    Tensor lm_head;   // [V, C]: lm_head.weight, or embed.wte when tied
};

}  // namespace tandem::model

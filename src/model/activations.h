// Every activation a training step keeps, carved from one arena Buffer sized before the first
// step from (B, T, config); forward and backward allocate nothing.
#pragma once

#include <cstddef>
#include <vector>

#include "model/config.h"
#include "model/layers/attention.h"
#include "model/layers/lm_head.h"
#include "model/layers/mlp.h"
#include "model/layers/norm.h"

namespace tandem::model {

struct BlockActivations {
    Tensor x;  // [B, T, C] the block's input (the residual stream), owned by the previous block
    Tensor attn_in;  // [B, T, C] attn_norm(x)
    NormSaved attn_norm;
    AttentionSaved attn;
    Tensor mid;  // [B, T, C] x + attention
    Tensor mlp_in;  // [B, T, C] mlp_norm(mid)
    NormSaved mlp_norm;
    MlpSaved mlp;
    Tensor out;  // [B, T, C] mid + mlp: the next block's x
};

struct Activations {
    Tensor tokens;   // i32 [B, T]
    Tensor targets;  // i32 [B, T]
    Tensor loss_weights;  // [B, T] in the stats dtype: per-token loss weights, when a batch has them
    Tensor embed;    // [B, T, C] the first residual
    std::vector<BlockActivations> blocks;
    Tensor head_in;  // [B, T, C] final_norm(last residual)
    NormSaved final_norm;
    LmHeadSaved head;  // logits [B T, V]

    // Scratch shared by all blocks.
    Tensor proj;   // [B, T, C] a block half's output before its residual add
    Tensor dres;   // [B, T, C] the running gradient of the residual stream
    Tensor dnorm;  // [B, T, C] the gradient of a norm's output
    AttentionScratch attn_scratch;
    MlpScratch mlp_scratch;
};

// Lays the activations of a (B, T) step out from `base` (device memory) and returns the bytes
// they span. With base == nullptr it only measures: call it once with the largest (B, T) to size
// the arena, then with the arena's base for each step's (B, T) (which then fits).
size_t layout_activations(Activations& acts, void* base, Device device, const ModelConfig& config,
                          DType dtype, int64_t B, int64_t T);

}  // namespace tandem::model

// The transformer block, written once:  mid = x + attention(attn_norm(x));
// out = mid + mlp(mlp_norm(mid)). Training's Model runs it with full causal attention and keeps
// every activation for block_backward; inference's PagedForward runs the same wiring over a
// paged key/value cache (the attention mode is the `paged` argument), with one set of
// activation buffers shared by all layers.
#pragma once

#include "model/activations.h"
#include "model/weight_views.h"

namespace tandem::model {

// Reads b.x and writes b.out (which may be the same tensor: x is dead once mid is formed),
// filling the activations between. proj [N, C] (or [B, T, C]) is scratch for each half's
// output before its residual add.
void block_forward(backend::Backend& be, const BlockActivations& b, Tensor proj,
                   const BlockWeights& w, const AttentionShape& s,
                   const PagedAttention* paged = nullptr);

// With dres = d/d(b.out) on entry, leaves d/d(b.x) in dres and adds the block's weight
// gradients to dw. dnorm is scratch of dres's shape.
void block_backward(backend::Backend& be, Tensor dres, Tensor dnorm, const BlockWeights& dw,
                    const AttentionScratch& attn_scratch, const MlpScratch& mlp_scratch,
                    const BlockActivations& b, const BlockWeights& w, const AttentionShape& s);

}  // namespace tandem::model

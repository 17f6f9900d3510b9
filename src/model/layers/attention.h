// The attention half of a transformer block: one QKV product into the packed
// [B, T, (H + 2 Hkv) D] layout, optional per-head RMSNorm of q and k (Qwen3), RoPE (Llama),
// attention and the output product. Attention is full causal self-attention over each of B
// sequences (training; saves lse for backward), or over a paged key/value cache (inference: the
// rows are tokens of any sequences at their own positions). The residual add is the block's job.
#pragma once

#include "backend/backend.h"
#include "model/layers/linear.h"

namespace tandem::model {

struct AttentionWeights {
    Linear qkv;     // [(H + 2 Hkv) D, C] (Llama: q, k, v stacked) or [C, 3C] (GPT-2 c_attn)
    Tensor q_norm;  // [D] or empty
    Tensor k_norm;  // [D] or empty
    Linear out;     // [C, H D] (o_proj) or [C, C] (GPT-2 c_proj)
};

struct AttentionShape {
    int64_t H = 0, Hkv = 0, D = 0;
    bool has_rope = false;
    backend::RopeParams rope;  // theta and Llama 3's frequency rescaling
    bool has_qk_norm = false;
    float norm_eps = 1e-6f;  // of the qk-norm
};

// What the forward pass keeps for the backward pass.
struct AttentionSaved {
    Tensor qkv_raw;  // [B, T, (H + 2 Hkv) D] the product's output (qk-norm only; else empty)
    Tensor qk_rstd;  // [B, T, H + Hkv] (qk-norm only)
    Tensor qkv;      // [B, T, (H + 2 Hkv) D] after qk-norm and RoPE: what attention read
    Tensor att;      // [B, T, H D] attention output before the output product
    Tensor lse;      // [B, H, T]
};

// Backward-only buffers, shared by all layers.
struct AttentionScratch {
    Tensor dqkv;      // [B, T, (H + 2 Hkv) D]
    Tensor dqkv_raw;  // [B, T, (H + 2 Hkv) D] (qk-norm only)
    Tensor datt;      // [B, T, H D]
};

// Attention over a paged key/value cache, for one layer: each row's k and v go into its page
// slot, and each row attends to its sequence's positions [0, its own] (backend.h,
// paged_attention_forward). The saved tensors are then shaped [1, N, ...]; lse is unused.
struct PagedAttention {
    Tensor k_pages, v_pages;  // this layer's [P, page_size, Hkv D]
    Tensor page_table;        // i32 [S, pages_per_seq]
    Tensor seq_index;         // i32 [N]
    Tensor positions;         // i32 [N]
};

// y [B, T, C] = attention(x [B, T, C]): full causal attention at positions 0..T-1 when `paged`
// is null, else attention over the paged cache at the rows' own positions.
void attention_forward(backend::Backend& be, Tensor y, const AttentionSaved& saved, Tensor x,
                       const AttentionWeights& w, const AttentionShape& s,
                       const PagedAttention* paged = nullptr);
// dx [B, T, C] is overwritten; the gradients in dw are accumulated (+=).
void attention_backward(backend::Backend& be, Tensor dx, const AttentionWeights& dw,
                        const AttentionScratch& scratch, Tensor dy, Tensor x,
                        const AttentionSaved& saved, const AttentionWeights& w,
                        const AttentionShape& s);

}  // namespace tandem::model

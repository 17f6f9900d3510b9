// Attention forward and backward, reading like the math: x -> qkv -> (qk-norm) -> (RoPE) ->
// softmax(q k^T / sqrt(D)) v -> output product, and back in the reverse order.
#include "model/layers/attention.h"

namespace tandem::model {

namespace {
// [B, T, X] as the [B T, X] matrix a product wants.
Tensor rows(Tensor t) { return t.view({t.rows(), t.cols()}); }
}  // namespace

void attention_forward(backend::Backend& be, Tensor y, const AttentionSaved& saved, Tensor x,
                       const AttentionWeights& w, const AttentionShape& s,
                       const PagedAttention* paged) {
    if (s.has_qk_norm) {
        linear_forward(be, rows(saved.qkv_raw), rows(x), w.qkv);
        be.qk_norm_forward(saved.qkv, saved.qk_rstd, saved.qkv_raw, w.q_norm, w.k_norm, s.H,
                           s.Hkv, s.norm_eps);
    } else {
        linear_forward(be, rows(saved.qkv), rows(x), w.qkv);
    }
    if (paged) {
        const Tensor qkv = rows(saved.qkv), att = rows(saved.att);
        if (s.has_rope) be.rope_at_forward(qkv, paged->positions, s.H, s.Hkv, s.rope);
        be.paged_kv_write(paged->k_pages, paged->v_pages, qkv, paged->page_table,
                          paged->seq_index, paged->positions, s.H, s.Hkv);
        be.paged_attention_forward(att, qkv, paged->k_pages, paged->v_pages, paged->page_table,
                                   paged->seq_index, paged->positions, s.H, s.Hkv);
    } else {
        if (s.has_rope) be.rope_forward(saved.qkv, s.H, s.Hkv, s.rope, /*pos_offset=*/0);
        be.attention_forward(saved.att, saved.lse, saved.qkv, s.H, s.Hkv);
    }
    linear_forward(be, rows(y), rows(saved.att), w.out);
}

void attention_backward(backend::Backend& be, Tensor dx, const AttentionWeights& dw,
                        const AttentionScratch& scratch, Tensor dy, Tensor x,
                        const AttentionSaved& saved, const AttentionWeights& w,
                        const AttentionShape& s) {
    linear_backward(be, rows(scratch.datt), dw.out, rows(dy), rows(saved.att), w.out);
    be.attention_backward(scratch.dqkv, scratch.datt, saved.qkv, saved.att, saved.lse, s.H,
                          s.Hkv);
    if (s.has_rope) be.rope_backward(scratch.dqkv, s.H, s.Hkv, s.rope, /*pos_offset=*/0);
    Tensor dqkv_raw = scratch.dqkv;
    if (s.has_qk_norm) {
        be.qk_norm_backward(scratch.dqkv_raw, dw.q_norm, dw.k_norm, scratch.dqkv, saved.qkv_raw,
                            w.q_norm, w.k_norm, saved.qk_rstd, s.H, s.Hkv);
        dqkv_raw = scratch.dqkv_raw;
    }
    linear_backward(be, rows(dx), dw.qkv, rows(dqkv_raw), rows(x), w.qkv);
}

}  // namespace tandem::model

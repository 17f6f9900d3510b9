// Shape and dtype checks of every kernel in backend.h, shared by all backends' launchers so that
// each rule is written once. A failed check is a tandem bug (callers are tandem code), so each
// one is a TANDEM_ASSERT that prints the shapes involved.
#pragma once

#include <cstdint>

#include "backend/backend.h"

namespace tandem::backend::checks {

void embedding_forward(const Tensor& out, const Tensor& tokens, const Tensor& wte,
                       const Tensor& wpe, int64_t pos_offset);
void embedding_backward(const Tensor& dwte, const Tensor& dwpe, const Tensor& dout,
                        const Tensor& tokens);

void layer_norm_forward(const Tensor& y, const Tensor& mean, const Tensor& rstd, const Tensor& x,
                        const Tensor& weight, const Tensor& bias);
void layer_norm_backward(const Tensor& dx, const Tensor& dweight, const Tensor& dbias,
                         const Tensor& dy, const Tensor& x, const Tensor& weight,
                         const Tensor& mean, const Tensor& rstd);
void rms_norm_forward(const Tensor& y, const Tensor& rstd, const Tensor& x, const Tensor& weight);
void rms_norm_backward(const Tensor& dx, const Tensor& dweight, const Tensor& dy, const Tensor& x,
                       const Tensor& weight, const Tensor& rstd);
void qk_norm(const Tensor& y, const Tensor& rstd, const Tensor& qkv, const Tensor& q_weight,
             const Tensor& k_weight, int64_t H, int64_t Hkv);

// The sizes of one matmul call after the checks: S products of [M, K] @ [K, N].
struct MatmulDims {
    int64_t S, M, N, K;
};
MatmulDims matmul(const Tensor& out, const Tensor& a, const Tensor& b, const Tensor& bias,
                  bool trans_a, bool trans_b);
void bias_backward(const Tensor& dbias, const Tensor& dout);
// The sizes of one matmul_weights call: out [N, O] = x [N, K] times w [O, K] or [K, O].
struct MatmulWeightsDims {
    int64_t N, O, K;
};
MatmulWeightsDims matmul_weights(const Tensor& out, const Tensor& x, const Tensor& w,
                                 const Tensor& bias, bool w_is_in_out);

void same_shape(const Tensor& a, const Tensor& b);  // elementwise ops: gelu, add
void swiglu(const Tensor& y, const Tensor& gate_up);

// The sizes of one attention call: qkv [B, T, (H + 2 Hkv) * D].
struct AttentionDims {
    int64_t B, T, H, Hkv, D;
    int64_t width() const { return (H + 2 * Hkv) * D; }
};
AttentionDims qkv_layout(const Tensor& qkv, int64_t H, int64_t Hkv);
void attention_forward(const Tensor& out, const Tensor& lse, const Tensor& qkv, int64_t H,
                       int64_t Hkv);
void attention_backward(const Tensor& dqkv, const Tensor& dout, const Tensor& qkv,
                        const Tensor& out, const Tensor& lse, int64_t H, int64_t Hkv);

// Rows at their own positions (inference). On host memory the checks also read the i32 inputs:
// a token or position out of range, a row whose sequence, position or page falls outside the
// page table or the pool stops here, before a kernel reads past a buffer.
void embedding_at_forward(const Tensor& out, const Tensor& tokens, const Tensor& positions,
                          const Tensor& wte, const Tensor& wpe);
void rope_at(const Tensor& qkv, const Tensor& positions, int64_t H, int64_t Hkv);

// The sizes of one paged-cache call: qkv [N, (H + 2 Hkv) D], pages [P, page_size, Hkv D],
// page_table [S, pages_per_seq].
struct PagedDims {
    int64_t N, H, Hkv, D, n_pages, page_size, n_seqs, pages_per_seq;
};
PagedDims paged_kv_write(const Tensor& k_pages, const Tensor& v_pages, const Tensor& qkv,
                         const Tensor& page_table, const Tensor& seq_index,
                         const Tensor& positions, int64_t H, int64_t Hkv);
PagedDims paged_attention_forward(const Tensor& out, const Tensor& qkv, const Tensor& k_pages,
                                  const Tensor& v_pages, const Tensor& page_table,
                                  const Tensor& seq_index, const Tensor& positions, int64_t H,
                                  int64_t Hkv);

void cross_entropy_forward(const Tensor& losses, const Tensor& lse, const Tensor& logits,
                           const Tensor& targets);
void cross_entropy_backward(const Tensor& dlogits, const Tensor& logits, const Tensor& lse,
                            const Tensor& targets, const Tensor& weights);
void adamw(const Tensor& param, const Tensor& grad, const Tensor& m, const Tensor& v,
           const AdamWParams& hp);

}  // namespace tandem::backend::checks

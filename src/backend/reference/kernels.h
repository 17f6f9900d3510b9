// The reference kernels, one template per kernel of backend.h, instantiated for float and double
// in the file of their op family. The launchers in reference_backend.cpp have checked shapes and
// dtypes; `Real` is the compute dtype and also the dtype of saved statistics (stats_dtype).
#pragma once

#include <cstdint>

#include "backend/backend.h"

namespace tandem::backend::reference {

template <typename Real>
void embedding_forward(Tensor out, Tensor tokens, Tensor wte, Tensor wpe, int64_t pos_offset);
template <typename Real>
void embedding_backward(Tensor dwte, Tensor dwpe, Tensor dout, Tensor tokens);

template <typename Real>
void layer_norm_forward(Tensor y, Tensor mean, Tensor rstd, Tensor x, Tensor weight, Tensor bias,
                        float eps);
template <typename Real>
void layer_norm_backward(Tensor dx, Tensor dweight, Tensor dbias, Tensor dy, Tensor x,
                         Tensor weight, Tensor mean, Tensor rstd);
template <typename Real>
void rms_norm_forward(Tensor y, Tensor rstd, Tensor x, Tensor weight, float eps);
template <typename Real>
void rms_norm_backward(Tensor dx, Tensor dweight, Tensor dy, Tensor x, Tensor weight, Tensor rstd);
template <typename Real>
void qk_norm_forward(Tensor y, Tensor rstd, Tensor qkv, Tensor q_weight, Tensor k_weight, int64_t H,
                     int64_t Hkv, float eps);
template <typename Real>
void qk_norm_backward(Tensor dqkv, Tensor dq_weight, Tensor dk_weight, Tensor dy, Tensor qkv,
                      Tensor q_weight, Tensor k_weight, Tensor rstd, int64_t H, int64_t Hkv);

template <typename Real>
void matmul(Tensor out, Tensor a, Tensor b, Tensor bias, bool trans_a, bool trans_b,
            bool accumulate);
template <typename Real>
void bias_backward(Tensor dbias, Tensor dout);
template <typename Real>
void matmul_weights(Tensor out, Tensor x, Tensor w, Tensor bias, bool w_is_in_out);

template <typename Real>
void gelu_forward(Tensor y, Tensor x);
template <typename Real>
void gelu_backward(Tensor dx, Tensor dy, Tensor x);
template <typename Real>
void swiglu_forward(Tensor y, Tensor gate_up);
template <typename Real>
void swiglu_backward(Tensor dgate_up, Tensor dy, Tensor gate_up);

template <typename Real>
void rope(Tensor qkv, int64_t H, int64_t Hkv, const RopeParams& params, int64_t pos_offset,
          bool inverse);
template <typename Real>
void attention_forward(Tensor out, Tensor lse, Tensor qkv, int64_t H, int64_t Hkv);
template <typename Real>
void attention_backward(Tensor dqkv, Tensor dout, Tensor qkv, Tensor out, Tensor lse, int64_t H,
                        int64_t Hkv);

template <typename Real>
void embedding_at_forward(Tensor out, Tensor tokens, Tensor positions, Tensor wte, Tensor wpe);
template <typename Real>
void rope_at(Tensor qkv, Tensor positions, int64_t H, int64_t Hkv, const RopeParams& params);
template <typename Real>
void paged_kv_write(Tensor k_pages, Tensor v_pages, Tensor qkv, Tensor page_table,
                    Tensor seq_index, Tensor positions, int64_t H, int64_t Hkv);
template <typename Real>
void paged_attention_forward(Tensor out, Tensor qkv, Tensor k_pages, Tensor v_pages,
                             Tensor page_table, Tensor seq_index, Tensor positions, int64_t H,
                             int64_t Hkv);

template <typename Real>
void add(Tensor out, Tensor a, Tensor b);
template <typename Real>
void scale(Tensor x, float s);
template <typename Real>
double sum(Tensor x);
template <typename Real>
double sum_squares(Tensor x);

template <typename Real>
void cross_entropy_forward(Tensor losses, Tensor lse, Tensor logits, Tensor targets,
                           int32_t ignore_index);
template <typename Real>
void cross_entropy_backward(Tensor dlogits, Tensor logits, Tensor lse, Tensor targets,
                            Tensor weights, float dloss, int32_t ignore_index);

template <typename Real>
void adamw_update(Tensor param, Tensor grad, Tensor m, Tensor v, const AdamWParams& hp);

}  // namespace tandem::backend::reference

// Instantiates a kernel template for both compute dtypes of the reference backend.
#define TANDEM_REFERENCE_INSTANTIATE(kernel, ...) \
    template void kernel<float>(__VA_ARGS__);     \
    template void kernel<double>(__VA_ARGS__)

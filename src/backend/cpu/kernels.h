// The cpu kernels (f32), one function per kernel of backend.h, defined in the file of their op
// family. The launchers in cpu_backend.cpp have checked shapes and dtypes.
#pragma once

#include <cstdint>

#include "backend/backend.h"
#include "backend/cpu/gemm.h"

namespace tandem::backend::cpu {

void embedding_forward(Tensor out, Tensor tokens, Tensor wte, Tensor wpe, int64_t pos_offset);
void embedding_at_forward(Tensor out, Tensor tokens, Tensor positions, Tensor wte, Tensor wpe);
void embedding_backward(Tensor dwte, Tensor dwpe, Tensor dout, Tensor tokens);

void layer_norm_forward(Tensor y, Tensor mean, Tensor rstd, Tensor x, Tensor weight, Tensor bias,
                        float eps);
void layer_norm_backward(Tensor dx, Tensor dweight, Tensor dbias, Tensor dy, Tensor x,
                         Tensor weight, Tensor mean, Tensor rstd);
void rms_norm_forward(Tensor y, Tensor rstd, Tensor x, Tensor weight, float eps);
void rms_norm_backward(Tensor dx, Tensor dweight, Tensor dy, Tensor x, Tensor weight, Tensor rstd);
void qk_norm_forward(Tensor y, Tensor rstd, Tensor qkv, Tensor q_weight, Tensor k_weight, int64_t H,
                     int64_t Hkv, float eps);
void qk_norm_backward(Tensor dqkv, Tensor dq_weight, Tensor dk_weight, Tensor dy, Tensor qkv,
                      Tensor q_weight, Tensor k_weight, Tensor rstd, int64_t H, int64_t Hkv);

void matmul(Tensor out, Tensor a, Tensor b, Tensor bias, bool trans_a, bool trans_b,
            bool accumulate);
void bias_backward(Tensor dbias, Tensor dout);

void gelu_forward(Tensor y, Tensor x);
void gelu_backward(Tensor dx, Tensor dy, Tensor x);
void swiglu_forward(Tensor y, Tensor gate_up);
void swiglu_backward(Tensor dgate_up, Tensor dy, Tensor gate_up);

void rope(Tensor qkv, int64_t H, int64_t Hkv, const RopeParams& params, int64_t pos_offset,
          bool inverse);
void attention_forward(Tensor out, Tensor lse, Tensor qkv, int64_t H, int64_t Hkv);
void rope_at(Tensor qkv, Tensor positions, int64_t H, int64_t Hkv, const RopeParams& params);
void paged_kv_write(Tensor k_pages, Tensor v_pages, Tensor qkv, Tensor page_table,
                    Tensor seq_index, Tensor positions, int64_t H, int64_t Hkv);
void paged_attention_forward(Tensor out, Tensor qkv, Tensor k_pages, Tensor v_pages,
                             Tensor page_table, Tensor seq_index, Tensor positions, int64_t H,
                             int64_t Hkv);
void attention_backward(Tensor dqkv, Tensor dout, Tensor qkv, Tensor out, Tensor lse, int64_t H,
                        int64_t Hkv);
// The two above with their products on `kernel` (openblas, or one of tandem's this CPU runs)
// rather than the one the backend picks: for the tests that hold the two ways against each other.
void attention_forward_on(GemmKernel kernel, Tensor out, Tensor lse, Tensor qkv, int64_t H,
                          int64_t Hkv);
void attention_backward_on(GemmKernel kernel, Tensor dqkv, Tensor dout, Tensor qkv, Tensor out,
                           Tensor lse, int64_t H, int64_t Hkv);

void fill_zero(Tensor x);
void add(Tensor out, Tensor a, Tensor b);
void scale(Tensor x, float s);
double sum(Tensor x);
double sum_squares(Tensor x);

void cross_entropy_forward(Tensor losses, Tensor lse, Tensor logits, Tensor targets,
                           int32_t ignore_index);
void cross_entropy_backward(Tensor dlogits, Tensor logits, Tensor lse, Tensor targets,
                            Tensor weights, float dloss, int32_t ignore_index);

void adamw_update(Tensor param, Tensor grad, Tensor m, Tensor v, const AdamWParams& hp);

}  // namespace tandem::backend::cpu

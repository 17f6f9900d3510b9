// What every launcher needs: the stream, the cuBLAS(Lt) handles and workspace, and scratch memory
// from the caching allocator. The launchers of each op family are declared here; each .cu file
// defines its own, checks shapes and dtypes once and dispatches on the compute dtype.
#pragma once

#include <cstddef>
#include <cstdint>

#include "backend/backend.h"
#include "backend/checks.h"
#include "backend/cuda/allocator.h"
#include "backend/cuda/check.h"

namespace tandem::backend::cuda {

struct Context {
    cudaStream_t stream = nullptr;
    cublasLtHandle_t lt = nullptr;
    cublasHandle_t blas = nullptr;
    void* lt_workspace = nullptr;
    size_t lt_workspace_bytes = 0;
    int n_sms = 0;
    CachingAllocator* allocator = nullptr;
};

// Temporary device memory for one launcher, returned to the cache at scope exit. Safe without a
// synchronisation: everything runs on the one stream, so a later reuse is ordered after the use.
class Scratch {
public:
    Scratch(Context& ctx, size_t bytes) : ctx_(ctx), data_(ctx.allocator->alloc(bytes)) {}
    ~Scratch() { ctx_.allocator->free(data_); }
    Scratch(const Scratch&) = delete;
    Scratch& operator=(const Scratch&) = delete;
    template <typename T>
    T* as() const { return static_cast<T*>(data_); }

private:
    Context& ctx_;
    void* data_;
};

// Compute dtypes of this backend. The launchers run the shared shape checks of backend/checks.h
// first, then this one.
inline bool is_compute_dtype(DType dtype) { return dtype == DType::F32 || dtype == DType::BF16; }
inline void expect_compute_dtype(const Tensor& t) {
    TANDEM_ASSERT(is_compute_dtype(t.dtype), "the cuda backend computes in f32 or bf16", t.str());
}

// ---- launchers, one group per .cu file ------------------------------------------------------
void embedding_forward(Context&, Tensor out, Tensor tokens, Tensor wte, Tensor wpe,
                       int64_t pos_offset);
void embedding_backward(Context&, Tensor dwte, Tensor dwpe, Tensor dout, Tensor tokens);

void layer_norm_forward(Context&, Tensor y, Tensor mean, Tensor rstd, Tensor x, Tensor weight,
                        Tensor bias, float eps);
void layer_norm_backward(Context&, Tensor dx, Tensor dweight, Tensor dbias, Tensor dy, Tensor x,
                         Tensor weight, Tensor mean, Tensor rstd);
void rms_norm_forward(Context&, Tensor y, Tensor rstd, Tensor x, Tensor weight, float eps);
void rms_norm_backward(Context&, Tensor dx, Tensor dweight, Tensor dy, Tensor x, Tensor weight,
                       Tensor rstd);
void qk_norm_forward(Context&, Tensor y, Tensor rstd, Tensor qkv, Tensor q_weight,
                     Tensor k_weight, int64_t H, int64_t Hkv, float eps);
void qk_norm_backward(Context&, Tensor dqkv, Tensor dq_weight, Tensor dk_weight, Tensor dy,
                      Tensor qkv, Tensor q_weight, Tensor k_weight, Tensor rstd, int64_t H,
                      int64_t Hkv);

void matmul(Context&, Tensor out, Tensor a, Tensor b, Tensor bias, bool trans_a, bool trans_b,
            bool accumulate);
void bias_backward(Context&, Tensor dbias, Tensor dout);

void gelu_forward(Context&, Tensor y, Tensor x);
void gelu_backward(Context&, Tensor dx, Tensor dy, Tensor x);
void swiglu_forward(Context&, Tensor y, Tensor gate_up);
void swiglu_backward(Context&, Tensor dgate_up, Tensor dy, Tensor gate_up);

void rope(Context&, Tensor qkv, int64_t H, int64_t Hkv, const RopeParams& params,
          int64_t pos_offset, bool inverse);
void attention_forward(Context&, Tensor out, Tensor lse, Tensor qkv, int64_t H, int64_t Hkv);
void attention_backward(Context&, Tensor dqkv, Tensor dout, Tensor qkv, Tensor out, Tensor lse,
                        int64_t H, int64_t Hkv);

void add(Context&, Tensor out, Tensor a, Tensor b);
void scale(Context&, Tensor x, float s);
double sum(Context&, Tensor x, bool squares);

void cross_entropy_forward(Context&, Tensor losses, Tensor lse, Tensor logits, Tensor targets,
                           int32_t ignore_index);
void cross_entropy_backward(Context&, Tensor dlogits, Tensor logits, Tensor lse, Tensor targets,
                            Tensor weights, float dloss, int32_t ignore_index);

void adamw_update(Context&, Tensor param, Tensor grad, Tensor m, Tensor v, const AdamWParams& hp);

}  // namespace tandem::backend::cuda

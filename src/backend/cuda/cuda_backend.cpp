// CudaBackend: owns the stream, the cuBLAS(Lt) handles and the caching allocator, and forwards
// each kernel of backend.h to its launcher in the op family's .cu file.
#include "backend/cuda/cuda_backend.h"

#include <algorithm>
#include <vector>

#include "backend/cuda/context.h"
#include "core/error.h"

namespace tandem::backend {

namespace {

class CudaBackend final : public Backend {
public:
    CudaBackend() {
        TANDEM_CUDA_CHECK(cudaSetDevice(0));
        TANDEM_CUDA_CHECK(cudaDeviceGetAttribute(&ctx_.n_sms, cudaDevAttrMultiProcessorCount, 0));
        TANDEM_CUDA_CHECK(cudaStreamCreateWithFlags(&ctx_.stream, cudaStreamNonBlocking));
        TANDEM_CUDA_CHECK(cublasLtCreate(&ctx_.lt));
        TANDEM_CUDA_CHECK(cublasCreate(&ctx_.blas));
        TANDEM_CUDA_CHECK(cublasSetStream(ctx_.blas, ctx_.stream));
        // fp32 products must stay fp32 (the conformance tolerance is 1e-5): no TF32 shortcuts.
        TANDEM_CUDA_CHECK(cublasSetMathMode(ctx_.blas, CUBLAS_PEDANTIC_MATH));
        ctx_.allocator = &allocator_;
        ctx_.lt_workspace_bytes = size_t(32) << 20;  // cuBLASLt's recommendation for Hopper
        ctx_.lt_workspace = allocator_.alloc(ctx_.lt_workspace_bytes);
    }
    ~CudaBackend() override {
        cudaStreamSynchronize(ctx_.stream);
        allocator_.free(ctx_.lt_workspace);
        cublasDestroy(ctx_.blas);
        cublasLtDestroy(ctx_.lt);
        cudaStreamDestroy(ctx_.stream);
    }

    std::string_view name() const override { return "cuda"; }
    Device device() const override { return Device::Cuda; }
    bool supports(DType dtype) const override { return cuda::is_compute_dtype(dtype); }

    void* alloc(size_t bytes) override { return allocator_.alloc(bytes); }
    void free(void* ptr) override { allocator_.free(ptr); }
    // Host memory is pageable and may be freed once we return: wait for the copy.
    void copy_to_device(void* dst, const void* host_src, size_t bytes) override {
        TANDEM_CUDA_CHECK(
            cudaMemcpyAsync(dst, host_src, bytes, cudaMemcpyHostToDevice, ctx_.stream));
        TANDEM_CUDA_CHECK(cudaStreamSynchronize(ctx_.stream));
    }
    void copy_to_host(void* host_dst, const void* src, size_t bytes) override {
        TANDEM_CUDA_CHECK(cudaMemcpyAsync(host_dst, src, bytes, cudaMemcpyDeviceToHost, ctx_.stream));
        TANDEM_CUDA_CHECK(cudaStreamSynchronize(ctx_.stream));
    }
    void copy(void* dst, const void* src, size_t bytes) override {
        TANDEM_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, ctx_.stream));
    }
    void fill_zero(Tensor x) override {
        TANDEM_CUDA_CHECK(cudaMemsetAsync(x.data, 0, x.bytes(), ctx_.stream));
    }
    void synchronize() override { TANDEM_CUDA_CHECK(cudaStreamSynchronize(ctx_.stream)); }

    void embedding_forward(Tensor out, Tensor tokens, Tensor wte, Tensor wpe,
                           int64_t pos_offset) override {
        if (wte.dtype != out.dtype || (!wpe.empty() && wpe.dtype != out.dtype))
            throw Error("embedding_forward with ", dtype_name(wte.dtype),
                        " tables is not implemented on cuda (compute dtype ", dtype_name(out.dtype),
                        "): load the model without --quant, or run it with --device cpu");
        cuda::embedding_forward(ctx_, out, tokens, wte, wpe, pos_offset);
    }
    void embedding_backward(Tensor dwte, Tensor dwpe, Tensor dout, Tensor tokens) override {
        cuda::embedding_backward(ctx_, dwte, dwpe, dout, tokens);
    }
    void layer_norm_forward(Tensor y, Tensor mean, Tensor rstd, Tensor x, Tensor weight,
                            Tensor bias, float eps) override {
        cuda::layer_norm_forward(ctx_, y, mean, rstd, x, weight, bias, eps);
    }
    void layer_norm_backward(Tensor dx, Tensor dweight, Tensor dbias, Tensor dy, Tensor x,
                             Tensor weight, Tensor mean, Tensor rstd) override {
        cuda::layer_norm_backward(ctx_, dx, dweight, dbias, dy, x, weight, mean, rstd);
    }
    void rms_norm_forward(Tensor y, Tensor rstd, Tensor x, Tensor weight, float eps) override {
        cuda::rms_norm_forward(ctx_, y, rstd, x, weight, eps);
    }
    void rms_norm_backward(Tensor dx, Tensor dweight, Tensor dy, Tensor x, Tensor weight,
                           Tensor rstd) override {
        cuda::rms_norm_backward(ctx_, dx, dweight, dy, x, weight, rstd);
    }
    void matmul(Tensor out, Tensor a, Tensor b, Tensor bias, bool trans_a, bool trans_b,
                bool accumulate) override {
        cuda::matmul(ctx_, out, a, b, bias, trans_a, trans_b, accumulate);
    }
    void bias_backward(Tensor dbias, Tensor dout) override {
        cuda::bias_backward(ctx_, dbias, dout);
    }
    void matmul_weights(Tensor out, Tensor x, Tensor w, Tensor bias, bool w_is_in_out) override {
        // Weights in the compute dtype are an ordinary product; quantised and other narrower
        // weights have no kernel here yet (the cpu backend runs them).
        if (w.dtype != x.dtype)
            throw Error("matmul_weights with ", dtype_name(w.dtype),
                        " weights is not implemented on cuda (compute dtype ",
                        dtype_name(x.dtype),
                        "): load the model without --quant, or run it with --device cpu");
        const int64_t N = out.rows(), O = out.cols(), K = x.cols();
        cuda::matmul(ctx_, out.view({N, O}), x.view({N, K}), w, bias, false, !w_is_in_out, false);
    }
    void gelu_forward(Tensor y, Tensor x) override { cuda::gelu_forward(ctx_, y, x); }
    void gelu_backward(Tensor dx, Tensor dy, Tensor x) override {
        cuda::gelu_backward(ctx_, dx, dy, x);
    }
    void swiglu_forward(Tensor y, Tensor gate_up) override {
        cuda::swiglu_forward(ctx_, y, gate_up);
    }
    void swiglu_backward(Tensor dgate_up, Tensor dy, Tensor gate_up) override {
        cuda::swiglu_backward(ctx_, dgate_up, dy, gate_up);
    }
    void qk_norm_forward(Tensor y, Tensor rstd, Tensor qkv, Tensor q_weight, Tensor k_weight,
                         int64_t H, int64_t Hkv, float eps) override {
        cuda::qk_norm_forward(ctx_, y, rstd, qkv, q_weight, k_weight, H, Hkv, eps);
    }
    void qk_norm_backward(Tensor dqkv, Tensor dq_weight, Tensor dk_weight, Tensor dy, Tensor qkv,
                          Tensor q_weight, Tensor k_weight, Tensor rstd, int64_t H,
                          int64_t Hkv) override {
        cuda::qk_norm_backward(ctx_, dqkv, dq_weight, dk_weight, dy, qkv, q_weight, k_weight, rstd,
                               H, Hkv);
    }
    void rope_forward(Tensor qkv, int64_t H, int64_t Hkv, const RopeParams& rope,
                      int64_t pos_offset) override {
        cuda::rope(ctx_, qkv, H, Hkv, rope, pos_offset, false);
    }
    void rope_backward(Tensor dqkv, int64_t H, int64_t Hkv, const RopeParams& rope,
                       int64_t pos_offset) override {
        cuda::rope(ctx_, dqkv, H, Hkv, rope, pos_offset, true);
    }
    void attention_forward(Tensor out, Tensor lse, Tensor qkv, int64_t H, int64_t Hkv) override {
        cuda::attention_forward(ctx_, out, lse, qkv, H, Hkv);
    }
    void attention_backward(Tensor dqkv, Tensor dout, Tensor qkv, Tensor out, Tensor lse,
                            int64_t H, int64_t Hkv) override {
        cuda::attention_backward(ctx_, dqkv, dout, qkv, out, lse, H, Hkv);
    }
    // TODO(#15): the paged inference kernels. Until then missing_kernels() names them and the
    // engine refuses this backend before any of them is called.
    void embedding_at_forward(Tensor, Tensor, Tensor, Tensor, Tensor) override {
        missing("embedding_at_forward");
    }
    void rope_at_forward(Tensor, Tensor, int64_t, int64_t, const RopeParams&) override {
        missing("rope_at_forward");
    }
    void paged_kv_write(Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, int64_t,
                        int64_t) override {
        missing("paged_kv_write");
    }
    void paged_attention_forward(Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, int64_t,
                                 int64_t) override {
        missing("paged_attention_forward");
    }
    std::vector<std::string_view> missing_kernels() const override {
        return {"embedding_at_forward", "rope_at_forward", "paged_kv_write",
                "paged_attention_forward"};
    }
    void add(Tensor out, Tensor a, Tensor b) override { cuda::add(ctx_, out, a, b); }
    void cross_entropy_forward(Tensor losses, Tensor lse, Tensor logits, Tensor targets,
                               int32_t ignore_index) override {
        cuda::cross_entropy_forward(ctx_, losses, lse, logits, targets, ignore_index);
    }
    void cross_entropy_backward(Tensor dlogits, Tensor logits, Tensor lse, Tensor targets,
                                Tensor weights, float dloss, int32_t ignore_index) override {
        cuda::cross_entropy_backward(ctx_, dlogits, logits, lse, targets, weights, dloss,
                                     ignore_index);
    }
    double sum(Tensor x) override { return cuda::sum(ctx_, x, false); }
    double sum_squares(Tensor x) override { return cuda::sum(ctx_, x, true); }
    void scale(Tensor x, float s) override { cuda::scale(ctx_, x, s); }
    void adamw_update(Tensor param, Tensor grad, Tensor m, Tensor v,
                      const AdamWParams& hp) override {
        cuda::adamw_update(ctx_, param, grad, m, v, hp);
    }

    cuda::Context& context() { return ctx_; }
    cuda::CachingAllocator& allocator() { return allocator_; }

private:
    [[noreturn]] static void missing(const char* kernel) {
        TANDEM_ASSERT(false, "the cuda backend has no", kernel, "(it is in missing_kernels())");
        __builtin_unreachable();
    }

    cuda::CachingAllocator allocator_;  // declared first: destroyed after the handles
    cuda::Context ctx_;
};

CudaBackend& as_cuda(Backend& backend) {
    TANDEM_ASSERT(backend.name() == "cuda", backend.name());
    return static_cast<CudaBackend&>(backend);
}

}  // namespace

std::unique_ptr<Backend> make_cuda_backend(std::string& why_unavailable) {
    int n_devices = 0;
    const cudaError_t status = cudaGetDeviceCount(&n_devices);
    if (status != cudaSuccess) {
        cudaGetLastError();
        why_unavailable = Error::concat("no usable CUDA driver or GPU (cudaGetDeviceCount: ",
                                        cudaGetErrorString(status), ")");
        return nullptr;
    }
    if (n_devices == 0) {
        why_unavailable = "no CUDA GPU found (cudaGetDeviceCount returned 0)";
        return nullptr;
    }
    try {
        return std::make_unique<CudaBackend>();
    } catch (const Error& e) {
        why_unavailable = Error::concat("the CUDA GPU could not be initialised: ", e.what());
        return nullptr;
    }
}

}  // namespace tandem::backend

// What backend/registry.cpp finds with dlsym: make_cuda_backend behind a name without C++
// mangling. The caller owns the backend (nullptr: the reason is in *why_unavailable).
extern "C" tandem::backend::Backend* tandem_make_cuda_backend(std::string* why_unavailable) {
    return tandem::backend::make_cuda_backend(*why_unavailable).release();
}

namespace tandem::backend {

CudaMemoryStats cuda_memory_stats(Backend& backend) {
    cuda::CachingAllocator& a = as_cuda(backend).allocator();
    return {a.reserved_bytes(), a.in_use_bytes(), a.n_device_mallocs()};
}

double cuda_median_ms(Backend& backend, const std::function<void()>& fn, int n_runs,
                      int n_warmup) {
    cudaStream_t stream = as_cuda(backend).context().stream;
    for (int i = 0; i < n_warmup; ++i) fn();
    cudaEvent_t begin, end;
    TANDEM_CUDA_CHECK(cudaEventCreate(&begin));
    TANDEM_CUDA_CHECK(cudaEventCreate(&end));
    std::vector<float> ms(n_runs);
    for (int i = 0; i < n_runs; ++i) {
        TANDEM_CUDA_CHECK(cudaEventRecord(begin, stream));
        fn();
        TANDEM_CUDA_CHECK(cudaEventRecord(end, stream));
        TANDEM_CUDA_CHECK(cudaEventSynchronize(end));
        TANDEM_CUDA_CHECK(cudaEventElapsedTime(&ms[i], begin, end));
    }
    cudaEventDestroy(begin);
    cudaEventDestroy(end);
    std::sort(ms.begin(), ms.end());
    return ms[n_runs / 2];
}

}  // namespace tandem::backend

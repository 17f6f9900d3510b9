// The residual add, in-place scaling, and sums (plain and of squares) reduced in double in two
// passes of fixed shape: a fixed grid of blocks writes one partial each, one block adds the
// partials in order. The result depends only on the tensor size, never on timing.
#include "backend/cuda/common.cuh"

namespace tandem::backend::cuda {

namespace {

constexpr int kThreads = 256;
constexpr int kSumBlocks = 1024;  // fixed: part of what makes the sum reproducible

template <typename T>
__global__ void add_kernel(T* out, const T* a, const T* b, int64_t n) {
    for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
         i += int64_t(gridDim.x) * blockDim.x)
        out[i] = from_f32<T>(to_f32(a[i]) + to_f32(b[i]));
}

template <typename T>
__global__ void scale_kernel(T* x, float s, int64_t n) {
    for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
         i += int64_t(gridDim.x) * blockDim.x)
        x[i] = from_f32<T>(to_f32(x[i]) * s);
}

template <typename T, bool kSquares>
__global__ void sum_partials_kernel(double* partials, const T* x, int64_t n) {
    double acc = 0.0;
    for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
         i += int64_t(gridDim.x) * blockDim.x) {
        const double v = to_f32(x[i]);
        acc += kSquares ? v * v : v;
    }
    acc = block_sum(acc);
    if (threadIdx.x == 0) partials[blockIdx.x] = acc;
}

__global__ void sum_finish_kernel(double* result, const double* partials, int n) {
    double acc = 0.0;
    for (int i = threadIdx.x; i < n; i += blockDim.x) acc += partials[i];
    acc = block_sum(acc);
    if (threadIdx.x == 0) *result = acc;
}

void check_same(const Tensor& a, const Tensor& b) {
    checks::same_shape(a, b);
    expect_compute_dtype(b);
}

}  // namespace

void add(Context& ctx, Tensor out, Tensor a, Tensor b) {
    check_same(out, a);
    check_same(out, b);
    if (out.numel() == 0) return;
    dispatch(out.dtype, [&](auto tag) {
        using T = decltype(tag);
        add_kernel<T><<<n_blocks_for(out.numel(), kThreads), kThreads, 0, ctx.stream>>>(
            out.as<T>(), a.as<T>(), b.as<T>(), out.numel());
    });
    TANDEM_CUDA_CHECK_LAUNCH();
}

void scale(Context& ctx, Tensor x, float s) {
    TANDEM_ASSERT(is_compute_dtype(x.dtype), x.str());
    if (x.numel() == 0) return;
    dispatch(x.dtype, [&](auto tag) {
        using T = decltype(tag);
        scale_kernel<T><<<n_blocks_for(x.numel(), kThreads), kThreads, 0, ctx.stream>>>(
            x.as<T>(), s, x.numel());
    });
    TANDEM_CUDA_CHECK_LAUNCH();
}

double sum(Context& ctx, Tensor x, bool squares) {
    TANDEM_ASSERT(is_compute_dtype(x.dtype), x.str());
    if (x.numel() == 0) return 0.0;
    Scratch partials(ctx, (kSumBlocks + 1) * sizeof(double));
    double* result = partials.as<double>() + kSumBlocks;
    dispatch(x.dtype, [&](auto tag) {
        using T = decltype(tag);
        if (squares)
            sum_partials_kernel<T, true><<<kSumBlocks, kThreads, 0, ctx.stream>>>(
                partials.as<double>(), x.as<T>(), x.numel());
        else
            sum_partials_kernel<T, false><<<kSumBlocks, kThreads, 0, ctx.stream>>>(
                partials.as<double>(), x.as<T>(), x.numel());
    });
    TANDEM_CUDA_CHECK_LAUNCH();
    sum_finish_kernel<<<1, kThreads, 0, ctx.stream>>>(result, partials.as<double>(), kSumBlocks);
    TANDEM_CUDA_CHECK_LAUNCH();
    double host = 0.0;
    TANDEM_CUDA_CHECK(
        cudaMemcpyAsync(&host, result, sizeof(double), cudaMemcpyDeviceToHost, ctx.stream));
    TANDEM_CUDA_CHECK(cudaStreamSynchronize(ctx.stream));
    return host;
}

}  // namespace tandem::backend::cuda

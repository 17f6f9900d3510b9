// GELU (tanh approximation) and SwiGLU, forward and backward: elementwise grid-stride loops in
// f32 arithmetic whatever the storage dtype.
#include "backend/cuda/common.cuh"

namespace tandem::backend::cuda {

namespace {

constexpr float kSqrt2OverPi = 0.7978845608028654f;
constexpr float kGeluCubic = 0.044715f;

template <typename T>
__global__ void gelu_forward_kernel(T* y, const T* x, int64_t n) {
    for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
         i += int64_t(gridDim.x) * blockDim.x) {
        const float v = to_f32(x[i]);
        const float u = kSqrt2OverPi * (v + kGeluCubic * v * v * v);
        y[i] = from_f32<T>(0.5f * v * (1.0f + tanhf(u)));
    }
}

// d/dx = 0.5 (1 + tanh u) + 0.5 x (1 - tanh^2 u) du/dx, du/dx = sqrt(2/pi) (1 + 3 * 0.044715 x^2).
// dx may alias dy: each element is read before it is written, by the same thread.
template <typename T>
__global__ void gelu_backward_kernel(T* dx, const T* dy, const T* x, int64_t n) {
    for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
         i += int64_t(gridDim.x) * blockDim.x) {
        const float v = to_f32(x[i]);
        const float u = kSqrt2OverPi * (v + kGeluCubic * v * v * v);
        const float th = tanhf(u);
        const float du = kSqrt2OverPi * (1.0f + 3.0f * kGeluCubic * v * v);
        const float grad = 0.5f * (1.0f + th) + 0.5f * v * (1.0f - th * th) * du;
        dx[i] = from_f32<T>(to_f32(dy[i]) * grad);
    }
}

__device__ __forceinline__ float sigmoid(float g) { return 1.0f / (1.0f + expf(-g)); }

template <typename T>
__global__ void swiglu_forward_kernel(T* y, const T* gate_up, int64_t N, int64_t F) {
    for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < N * F;
         i += int64_t(gridDim.x) * blockDim.x) {
        const int64_t n = i / F, f = i % F;
        const float g = to_f32(gate_up[n * 2 * F + f]), u = to_f32(gate_up[n * 2 * F + F + f]);
        y[i] = from_f32<T>(g * sigmoid(g) * u);
    }
}

// dgate = dy * up * s (1 + g (1 - s)), dup = dy * g s, with s = sigmoid(g).
template <typename T>
__global__ void swiglu_backward_kernel(T* dgate_up, const T* dy, const T* gate_up, int64_t N,
                                       int64_t F) {
    for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < N * F;
         i += int64_t(gridDim.x) * blockDim.x) {
        const int64_t n = i / F, f = i % F;
        const float g = to_f32(gate_up[n * 2 * F + f]), u = to_f32(gate_up[n * 2 * F + F + f]);
        const float s = sigmoid(g), d = to_f32(dy[i]);
        dgate_up[n * 2 * F + f] = from_f32<T>(d * u * s * (1.0f + g * (1.0f - s)));
        dgate_up[n * 2 * F + F + f] = from_f32<T>(d * g * s);
    }
}

constexpr int kThreads = 256;

void check_same(const Tensor& a, const Tensor& b) {
    checks::same_shape(a, b);
    expect_compute_dtype(b);
}

}  // namespace

void gelu_forward(Context& ctx, Tensor y, Tensor x) {
    check_same(y, x);
    if (x.numel() == 0) return;
    dispatch(x.dtype, [&](auto tag) {
        using T = decltype(tag);
        gelu_forward_kernel<T><<<n_blocks_for(x.numel(), kThreads), kThreads, 0, ctx.stream>>>(
            y.as<T>(), x.as<T>(), x.numel());
    });
    TANDEM_CUDA_CHECK_LAUNCH();
}

void gelu_backward(Context& ctx, Tensor dx, Tensor dy, Tensor x) {
    check_same(dx, x);
    check_same(dy, x);
    if (x.numel() == 0) return;
    dispatch(x.dtype, [&](auto tag) {
        using T = decltype(tag);
        gelu_backward_kernel<T><<<n_blocks_for(x.numel(), kThreads), kThreads, 0, ctx.stream>>>(
            dx.as<T>(), dy.as<T>(), x.as<T>(), x.numel());
    });
    TANDEM_CUDA_CHECK_LAUNCH();
}

void swiglu_forward(Context& ctx, Tensor y, Tensor gate_up) {
    checks::swiglu(y, gate_up);
    expect_compute_dtype(y);
    const int64_t N = y.rows(), F = y.cols();
    if (N * F == 0) return;
    dispatch(y.dtype, [&](auto tag) {
        using T = decltype(tag);
        swiglu_forward_kernel<T><<<n_blocks_for(N * F, kThreads), kThreads, 0, ctx.stream>>>(
            y.as<T>(), gate_up.as<T>(), N, F);
    });
    TANDEM_CUDA_CHECK_LAUNCH();
}

void swiglu_backward(Context& ctx, Tensor dgate_up, Tensor dy, Tensor gate_up) {
    checks::swiglu(dy, gate_up);
    check_same(dgate_up, gate_up);
    const int64_t N = dy.rows(), F = dy.cols();
    if (N * F == 0) return;
    dispatch(dy.dtype, [&](auto tag) {
        using T = decltype(tag);
        swiglu_backward_kernel<T><<<n_blocks_for(N * F, kThreads), kThreads, 0, ctx.stream>>>(
            dgate_up.as<T>(), dy.as<T>(), gate_up.as<T>(), N, F);
    });
    TANDEM_CUDA_CHECK_LAUNCH();
}

}  // namespace tandem::backend::cuda

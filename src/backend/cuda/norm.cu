// LayerNorm, RMSNorm and the per-head RMSNorm of q and k (qk_norm), forward and backward. One
// block per row (one warp per head for qk_norm) with f32 statistics; parameter gradients go
// through the deterministic column reduction of common.cuh. Backward adds into dx (`dx +=`: the
// residual stream's gradient is a running sum); qk_norm backward overwrites dqkv.
#include "backend/cuda/common.cuh"

namespace tandem::backend::cuda {

namespace {

constexpr int kRowThreads = 256;

// Two passes over the row (the second from L1/L2): the mean first, then the centred squares, so
// a large mean does not cancel the variance.
template <typename T>
__global__ void layer_norm_forward_kernel(T* y, float* mean_out, float* rstd_out, const T* x,
                                          const T* weight, const T* bias, int64_t C, float eps) {
    const int64_t n = blockIdx.x;
    const T* xr = x + n * C;
    float s = 0.0f;
    for (int64_t c = threadIdx.x; c < C; c += blockDim.x) s += to_f32(xr[c]);
    const float mean = block_sum(s) / float(C);
    float ss = 0.0f;
    for (int64_t c = threadIdx.x; c < C; c += blockDim.x) {
        const float d = to_f32(xr[c]) - mean;
        ss += d * d;
    }
    const float rstd = rsqrtf(block_sum(ss) / float(C) + eps);
    for (int64_t c = threadIdx.x; c < C; c += blockDim.x) {
        const float b = bias ? to_f32(bias[c]) : 0.0f;
        y[n * C + c] = from_f32<T>((to_f32(xr[c]) - mean) * rstd * to_f32(weight[c]) + b);
    }
    if (threadIdx.x == 0) {
        mean_out[n] = mean;
        rstd_out[n] = rstd;
    }
}

// dx += rstd * (g - mean(g) - xhat * mean(g * xhat)), g = weight * dy.
template <typename T>
__global__ void layer_norm_backward_kernel(T* dx, const T* dy, const T* x, const T* weight,
                                           const float* mean, const float* rstd, int64_t C) {
    const int64_t n = blockIdx.x;
    const float mu = mean[n], r = rstd[n];
    float sg = 0.0f, sgx = 0.0f;
    for (int64_t c = threadIdx.x; c < C; c += blockDim.x) {
        const float g = to_f32(weight[c]) * to_f32(dy[n * C + c]);
        sg += g;
        sgx += g * (to_f32(x[n * C + c]) - mu) * r;
    }
    const float mean_g = block_sum(sg) / float(C), mean_gx = block_sum(sgx) / float(C);
    for (int64_t c = threadIdx.x; c < C; c += blockDim.x) {
        const float g = to_f32(weight[c]) * to_f32(dy[n * C + c]);
        const float xhat = (to_f32(x[n * C + c]) - mu) * r;
        const int64_t i = n * C + c;
        dx[i] = from_f32<T>(to_f32(dx[i]) + r * (g - mean_g - xhat * mean_gx));
    }
}

template <typename T>
__global__ void rms_norm_forward_kernel(T* y, float* rstd_out, const T* x, const T* weight,
                                        int64_t C, float eps) {
    const int64_t n = blockIdx.x;
    float ss = 0.0f;
    for (int64_t c = threadIdx.x; c < C; c += blockDim.x) {
        const float v = to_f32(x[n * C + c]);
        ss += v * v;
    }
    const float r = rsqrtf(block_sum(ss) / float(C) + eps);
    for (int64_t c = threadIdx.x; c < C; c += blockDim.x)
        y[n * C + c] = from_f32<T>(to_f32(x[n * C + c]) * r * to_f32(weight[c]));
    if (threadIdx.x == 0) rstd_out[n] = r;
}

// dx += r * g - x * r^3 * mean(g * x), g = weight * dy.
template <typename T>
__global__ void rms_norm_backward_kernel(T* dx, const T* dy, const T* x, const T* weight,
                                         const float* rstd, int64_t C) {
    const int64_t n = blockIdx.x;
    const float r = rstd[n];
    float sgx = 0.0f;
    for (int64_t c = threadIdx.x; c < C; c += blockDim.x)
        sgx += to_f32(weight[c]) * to_f32(dy[n * C + c]) * to_f32(x[n * C + c]);
    const float k = r * r * r * block_sum(sgx) / float(C);
    for (int64_t c = threadIdx.x; c < C; c += blockDim.x) {
        const int64_t i = n * C + c;
        const float g = to_f32(weight[c]) * to_f32(dy[i]);
        dx[i] = from_f32<T>(to_f32(dx[i]) + r * g - to_f32(x[i]) * k);
    }
}

// Column-reduction terms: dy * xhat (layer norm), dy (bias), dy * x * rstd (rms norm).
template <typename T>
struct LayerNormDweight {
    const T *dy, *x;
    const float *mean, *rstd;
    int64_t C;
    __device__ float operator()(int64_t n, int64_t c) const {
        return to_f32(dy[n * C + c]) * (to_f32(x[n * C + c]) - mean[n]) * rstd[n];
    }
};
template <typename T>
struct RowValue {
    const T* dy;
    int64_t C;
    __device__ float operator()(int64_t n, int64_t c) const { return to_f32(dy[n * C + c]); }
};
template <typename T>
struct RmsNormDweight {
    const T *dy, *x;
    const float* rstd;
    int64_t C;
    __device__ float operator()(int64_t n, int64_t c) const {
        return to_f32(dy[n * C + c]) * to_f32(x[n * C + c]) * rstd[n];
    }
};

// ---- qk_norm: rows are heads; head j of position p sits at p * W + j * D -------------------
// One warp per head of one position; q heads (j < H) use q_weight, k heads k_weight, v heads are
// copied.
template <typename T>
__global__ void qk_norm_forward_kernel(T* y, float* rstd, const T* qkv, const T* q_weight,
                                       const T* k_weight, int64_t n_positions, int64_t H,
                                       int64_t Hkv, int64_t D, float eps) {
    const int64_t n_heads = H + 2 * Hkv;
    const int64_t row = int64_t(blockIdx.x) * (blockDim.x / 32) + threadIdx.x / 32;
    const int lane = threadIdx.x % 32;
    if (row >= n_positions * n_heads) return;
    const int64_t p = row / n_heads, j = row % n_heads;
    const int64_t base = p * n_heads * D + j * D;
    if (j >= H + Hkv) {
        for (int64_t d = lane; d < D; d += 32) y[base + d] = qkv[base + d];
        return;
    }
    const T* w = j < H ? q_weight : k_weight;
    float ss = 0.0f;
    for (int64_t d = lane; d < D; d += 32) {
        const float v = to_f32(qkv[base + d]);
        ss += v * v;
    }
    const float r = rsqrtf(warp_sum(ss) / float(D) + eps);
    for (int64_t d = lane; d < D; d += 32)
        y[base + d] = from_f32<T>(to_f32(qkv[base + d]) * r * to_f32(w[d]));
    if (lane == 0) rstd[p * (H + Hkv) + j] = r;
}

template <typename T>
__global__ void qk_norm_backward_kernel(T* dqkv, const T* dy, const T* qkv, const T* q_weight,
                                        const T* k_weight, const float* rstd, int64_t n_positions,
                                        int64_t H, int64_t Hkv, int64_t D) {
    const int64_t n_heads = H + 2 * Hkv;
    const int64_t row = int64_t(blockIdx.x) * (blockDim.x / 32) + threadIdx.x / 32;
    const int lane = threadIdx.x % 32;
    if (row >= n_positions * n_heads) return;
    const int64_t p = row / n_heads, j = row % n_heads;
    const int64_t base = p * n_heads * D + j * D;
    if (j >= H + Hkv) {
        for (int64_t d = lane; d < D; d += 32) dqkv[base + d] = dy[base + d];
        return;
    }
    const T* w = j < H ? q_weight : k_weight;
    const float r = rstd[p * (H + Hkv) + j];
    float sgx = 0.0f;
    for (int64_t d = lane; d < D; d += 32)
        sgx += to_f32(w[d]) * to_f32(dy[base + d]) * to_f32(qkv[base + d]);
    const float k = r * r * r * warp_sum(sgx) / float(D);
    for (int64_t d = lane; d < D; d += 32) {
        const float g = to_f32(w[d]) * to_f32(dy[base + d]);
        dqkv[base + d] = from_f32<T>(r * g - to_f32(qkv[base + d]) * k);
    }
}

// dq_weight (first = 0, count = H) or dk_weight (first = H, count = Hkv): rows n are
// (position, head) pairs of that group.
template <typename T>
struct QkNormDweight {
    const T *dy, *qkv;
    const float* rstd;
    int64_t H, Hkv, D, first, count;
    __device__ float operator()(int64_t n, int64_t d) const {
        const int64_t p = n / count, j = first + n % count;
        const int64_t i = (p * (H + 2 * Hkv) + j) * D + d;
        return to_f32(dy[i]) * to_f32(qkv[i]) * rstd[p * (H + Hkv) + j];
    }
};

}  // namespace

void layer_norm_forward(Context& ctx, Tensor y, Tensor mean, Tensor rstd, Tensor x, Tensor weight,
                        Tensor bias, float eps) {
    checks::layer_norm_forward(y, mean, rstd, x, weight, bias);
    expect_compute_dtype(x);
    const int64_t N = x.rows(), C = x.cols();
    if (N == 0) return;
    dispatch(x.dtype, [&](auto tag) {
        using T = decltype(tag);
        layer_norm_forward_kernel<T><<<unsigned(N), kRowThreads, 0, ctx.stream>>>(
            y.as<T>(), mean.as<float>(), rstd.as<float>(), x.as<T>(), weight.as<T>(),
            bias.empty() ? nullptr : bias.as<T>(), C, eps);
    });
    TANDEM_CUDA_CHECK_LAUNCH();
}

void layer_norm_backward(Context& ctx, Tensor dx, Tensor dweight, Tensor dbias, Tensor dy,
                         Tensor x, Tensor weight, Tensor mean, Tensor rstd) {
    checks::layer_norm_backward(dx, dweight, dbias, dy, x, weight, mean, rstd);
    expect_compute_dtype(x);
    const int64_t N = x.rows(), C = x.cols();
    if (N == 0) return;
    dispatch(x.dtype, [&](auto tag) {
        using T = decltype(tag);
        layer_norm_backward_kernel<T><<<unsigned(N), kRowThreads, 0, ctx.stream>>>(
            dx.as<T>(), dy.as<T>(), x.as<T>(), weight.as<T>(), mean.as<float>(),
            rstd.as<float>(), C);
        TANDEM_CUDA_CHECK_LAUNCH();
        column_sum_accumulate(ctx, dweight.as<T>(),
                              LayerNormDweight<T>{dy.as<T>(), x.as<T>(), mean.as<float>(),
                                                  rstd.as<float>(), C},
                              N, C);
        if (!dbias.empty()) column_sum_accumulate(ctx, dbias.as<T>(), RowValue<T>{dy.as<T>(), C}, N, C);
    });
}

void rms_norm_forward(Context& ctx, Tensor y, Tensor rstd, Tensor x, Tensor weight, float eps) {
    checks::rms_norm_forward(y, rstd, x, weight);
    expect_compute_dtype(x);
    const int64_t N = x.rows(), C = x.cols();
    if (N == 0) return;
    dispatch(x.dtype, [&](auto tag) {
        using T = decltype(tag);
        rms_norm_forward_kernel<T><<<unsigned(N), kRowThreads, 0, ctx.stream>>>(
            y.as<T>(), rstd.as<float>(), x.as<T>(), weight.as<T>(), C, eps);
    });
    TANDEM_CUDA_CHECK_LAUNCH();
}

void rms_norm_backward(Context& ctx, Tensor dx, Tensor dweight, Tensor dy, Tensor x,
                       Tensor weight, Tensor rstd) {
    checks::rms_norm_backward(dx, dweight, dy, x, weight, rstd);
    expect_compute_dtype(x);
    const int64_t N = x.rows(), C = x.cols();
    if (N == 0) return;
    dispatch(x.dtype, [&](auto tag) {
        using T = decltype(tag);
        rms_norm_backward_kernel<T><<<unsigned(N), kRowThreads, 0, ctx.stream>>>(
            dx.as<T>(), dy.as<T>(), x.as<T>(), weight.as<T>(), rstd.as<float>(), C);
        TANDEM_CUDA_CHECK_LAUNCH();
        column_sum_accumulate(ctx, dweight.as<T>(),
                              RmsNormDweight<T>{dy.as<T>(), x.as<T>(), rstd.as<float>(), C}, N, C);
    });
}

namespace {
struct QkDims {
    int64_t n_positions, D;
};
QkDims check_qk(const Tensor& y, const Tensor& rstd, const Tensor& qkv, const Tensor& q_weight,
                const Tensor& k_weight, int64_t H, int64_t Hkv) {
    checks::qk_norm(y, rstd, qkv, q_weight, k_weight, H, Hkv);
    expect_compute_dtype(qkv);
    const checks::AttentionDims d = checks::qkv_layout(qkv, H, Hkv);
    return {d.B * d.T, d.D};
}
constexpr int kHeadsPerBlock = 4;
}  // namespace

void qk_norm_forward(Context& ctx, Tensor y, Tensor rstd, Tensor qkv, Tensor q_weight,
                     Tensor k_weight, int64_t H, int64_t Hkv, float eps) {
    const QkDims d = check_qk(y, rstd, qkv, q_weight, k_weight, H, Hkv);
    const int64_t n_rows = d.n_positions * (H + 2 * Hkv);
    if (n_rows == 0) return;
    dispatch(qkv.dtype, [&](auto tag) {
        using T = decltype(tag);
        qk_norm_forward_kernel<T>
            <<<unsigned((n_rows + kHeadsPerBlock - 1) / kHeadsPerBlock), 32 * kHeadsPerBlock, 0,
               ctx.stream>>>(y.as<T>(), rstd.as<float>(), qkv.as<T>(), q_weight.as<T>(),
                             k_weight.as<T>(), d.n_positions, H, Hkv, d.D, eps);
    });
    TANDEM_CUDA_CHECK_LAUNCH();
}

void qk_norm_backward(Context& ctx, Tensor dqkv, Tensor dq_weight, Tensor dk_weight, Tensor dy,
                      Tensor qkv, Tensor q_weight, Tensor k_weight, Tensor rstd, int64_t H,
                      int64_t Hkv) {
    check_qk(dy, rstd, qkv, q_weight, k_weight, H, Hkv);
    const QkDims d = check_qk(dqkv, rstd, qkv, dq_weight, dk_weight, H, Hkv);
    const int64_t n_rows = d.n_positions * (H + 2 * Hkv);
    if (n_rows == 0) return;
    dispatch(qkv.dtype, [&](auto tag) {
        using T = decltype(tag);
        qk_norm_backward_kernel<T>
            <<<unsigned((n_rows + kHeadsPerBlock - 1) / kHeadsPerBlock), 32 * kHeadsPerBlock, 0,
               ctx.stream>>>(dqkv.as<T>(), dy.as<T>(), qkv.as<T>(), q_weight.as<T>(),
                             k_weight.as<T>(), rstd.as<float>(), d.n_positions, H, Hkv, d.D);
        TANDEM_CUDA_CHECK_LAUNCH();
        const QkNormDweight<T> q{dy.as<T>(), qkv.as<T>(), rstd.as<float>(), H, Hkv, d.D, 0, H};
        const QkNormDweight<T> k{dy.as<T>(), qkv.as<T>(), rstd.as<float>(), H, Hkv, d.D, H, Hkv};
        column_sum_accumulate(ctx, dq_weight.as<T>(), q, d.n_positions * H, d.D);
        column_sum_accumulate(ctx, dk_weight.as<T>(), k, d.n_positions * Hkv, d.D);
    });
}

}  // namespace tandem::backend::cuda

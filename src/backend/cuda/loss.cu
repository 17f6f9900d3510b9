// Softmax cross-entropy over the vocabulary, fused: one block per row reads the logits once with
// an online max and sum (the running sum is rescaled when the max grows), so the probabilities
// never exist in memory. Backward recomputes them from the saved lse and writes dlogits, which
// may alias the logits (each element is read, then written, by one thread).
#include "backend/cuda/common.cuh"

namespace tandem::backend::cuda {

namespace {

constexpr int kThreads = 512;

// Merge two (max, sum of exp(x - max)) pairs.
__device__ __forceinline__ void merge(float& m, float& s, float m2, float s2) {
    const float mx = fmaxf(m, m2);
    if (mx == -INFINITY) return;  // both empty
    s = s * expf(m - mx) + s2 * expf(m2 - mx);
    m = mx;
}

template <typename T>
__global__ void cross_entropy_forward_kernel(float* losses, float* lse_out, const T* logits,
                                             const int32_t* targets, int64_t V,
                                             int32_t ignore_index) {
    __shared__ float shared_m[32], shared_s[32];
    const int64_t n = blockIdx.x;
    const T* z = logits + n * V;
    float m = -INFINITY, s = 0.0f;
    for (int64_t v = threadIdx.x; v < V; v += blockDim.x) {
        const float x = to_f32(z[v]);
        if (x > m) {
            s = s * expf(m - x) + 1.0f;
            m = x;
        } else {
            s += expf(x - m);
        }
    }
    for (int offset = 16; offset > 0; offset /= 2) {
        const float m2 = __shfl_xor_sync(0xffffffffu, m, offset);
        const float s2 = __shfl_xor_sync(0xffffffffu, s, offset);
        merge(m, s, m2, s2);
    }
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    if (lane == 0) {
        shared_m[warp] = m;
        shared_s[warp] = s;
    }
    __syncthreads();
    if (threadIdx.x == 0) {
        float mt = shared_m[0], st = shared_s[0];
        for (int w = 1; w < int(blockDim.x / 32); ++w) merge(mt, st, shared_m[w], shared_s[w]);
        const float l = mt + logf(st);
        const int32_t target = targets[n];
        lse_out[n] = l;
        losses[n] = target == ignore_index ? 0.0f : l - to_f32(z[target]);
    }
}

// weights: [N] per-token loss weights, or nullptr for weight 1 everywhere.
template <typename T>
__global__ void cross_entropy_backward_kernel(T* dlogits, const T* logits, const float* lse,
                                              const int32_t* targets, const float* weights,
                                              int64_t V, float dloss, int32_t ignore_index) {
    const int64_t n = blockIdx.x;
    const int32_t target = targets[n];
    const float l = lse[n];
    const float scale = weights ? dloss * weights[n] : dloss;
    // A row of weight 0 is exactly 0 even where its logits are not finite: a mask drops it.
    const bool dropped = target == ignore_index || (weights && weights[n] == 0.0f);
    for (int64_t v = threadIdx.x; v < V; v += blockDim.x) {
        const float p = expf(to_f32(logits[n * V + v]) - l);
        const float g = dropped ? 0.0f : scale * (p - (v == target ? 1.0f : 0.0f));
        dlogits[n * V + v] = from_f32<T>(g);
    }
}

}  // namespace

void cross_entropy_forward(Context& ctx, Tensor losses, Tensor lse, Tensor logits, Tensor targets,
                           int32_t ignore_index) {
    checks::cross_entropy_forward(losses, lse, logits, targets);
    expect_compute_dtype(logits);
    const int64_t N = logits.rows(), V = logits.cols();
    if (N == 0) return;
    dispatch(logits.dtype, [&](auto tag) {
        using T = decltype(tag);
        cross_entropy_forward_kernel<T><<<unsigned(N), kThreads, 0, ctx.stream>>>(
            losses.as<float>(), lse.as<float>(), logits.as<T>(), targets.as<int32_t>(), V,
            ignore_index);
    });
    TANDEM_CUDA_CHECK_LAUNCH();
}

void cross_entropy_backward(Context& ctx, Tensor dlogits, Tensor logits, Tensor lse,
                            Tensor targets, Tensor weights, float dloss, int32_t ignore_index) {
    checks::cross_entropy_backward(dlogits, logits, lse, targets, weights);
    expect_compute_dtype(logits);
    const int64_t N = logits.rows(), V = logits.cols();
    if (N == 0) return;
    dispatch(logits.dtype, [&](auto tag) {
        using T = decltype(tag);
        cross_entropy_backward_kernel<T><<<unsigned(N), kThreads, 0, ctx.stream>>>(
            dlogits.as<T>(), logits.as<T>(), lse.as<float>(), targets.as<int32_t>(),
            weights.empty() ? nullptr : weights.as<float>(), V, dloss, ignore_index);
    });
    TANDEM_CUDA_CHECK_LAUNCH();
}

}  // namespace tandem::backend::cuda

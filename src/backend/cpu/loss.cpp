// The cpu softmax cross-entropy: OpenMP over rows; forward takes one pass for the max and one
// for the sum of exponentials, backward one pass that writes softmax - onehot, scaled.
#include <cmath>

#include "backend/cpu/kernels.h"
#include "backend/cpu/simd.h"

namespace tandem::backend::cpu {

namespace {

// log(sum_v exp(z_v)), with the max subtracted so that no exponential overflows.
TANDEM_CPU_CLONES float logsumexp_row(const float* z, int64_t V) {
    float mx = z[0];
#pragma omp simd reduction(max : mx)
    for (int64_t v = 0; v < V; ++v) mx = z[v] > mx ? z[v] : mx;  // (std::max stays scalar)
    float sum = 0;
#pragma omp simd reduction(+ : sum)
    for (int64_t v = 0; v < V; ++v) sum += exp_approx(z[v] - mx);
    return mx + std::log(sum);
}

// dz = scale * exp(z - lse); dz may alias z.
TANDEM_CPU_CLONES void softmax_row(float* dz, const float* z, float lse, float scale, int64_t V) {
    for (int64_t v = 0; v < V; ++v) dz[v] = scale * exp_approx(z[v] - lse);
}

}  // namespace

void cross_entropy_forward(Tensor losses, Tensor lse, Tensor logits, Tensor targets,
                           int32_t ignore_index) {
    const int64_t N = logits.rows(), V = logits.cols();
#pragma omp parallel for schedule(static)
    for (int64_t n = 0; n < N; ++n) {
        const float* z = logits.as<float>() + n * V;
        const float l = logsumexp_row(z, V);
        const int32_t target = targets.as<int32_t>()[n];
        lse.as<float>()[n] = l;
        losses.as<float>()[n] = target == ignore_index ? 0.0f : l - z[target];
    }
}

void cross_entropy_backward(Tensor dlogits, Tensor logits, Tensor lse, Tensor targets,
                            Tensor weights, float dloss, int32_t ignore_index) {
    const int64_t N = logits.rows(), V = logits.cols();
    const float* w = weights.empty() ? nullptr : weights.as<float>();
#pragma omp parallel for schedule(static)
    for (int64_t n = 0; n < N; ++n) {
        float* dz = dlogits.as<float>() + n * V;
        const int32_t target = targets.as<int32_t>()[n];
        // dloss * 1.0f is dloss exactly: unweighted rows are bit for bit what they were before
        // weights existed.
        const float scale = w ? dloss * w[n] : dloss;
        if (target == ignore_index || (w && w[n] == 0.0f)) {
            std::fill(dz, dz + V, 0.0f);
            continue;
        }
        softmax_row(dz, logits.as<float>() + n * V, lse.as<float>()[n], scale, V);
        dz[target] -= scale;
    }
}

}  // namespace tandem::backend::cpu

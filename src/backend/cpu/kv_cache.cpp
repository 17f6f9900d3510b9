// Attention over a key/value cache on the cpu: the work of incremental decoding, where each new
// query reads every cached key once. Threads split the (batch, query, head) rows; a row's
// scores live in a per-thread buffer sized by the cache.
#include <cmath>
#include <cstring>
#include <vector>

#include "backend/cpu/kernels.h"
#include "backend/cpu/simd.h"

namespace tandem::backend::cpu {

namespace {

// out[D] = softmax(q . k_s * scale over s < n) @ v_s, keys and values with row stride KV.
TANDEM_CPU_CLONES
void attend_row(float* out, float* scores, const float* q, const float* k, const float* v,
                int64_t n, int64_t D, int64_t KV, float scale) {
    float max_score = -INFINITY;
    for (int64_t s = 0; s < n; ++s) {
        const float* ks = k + s * KV;
        float dot = 0;
        for (int64_t d = 0; d < D; ++d) dot += q[d] * ks[d];
        scores[s] = dot * scale;
        max_score = scores[s] > max_score ? scores[s] : max_score;
    }
    float total = 0;
    for (int64_t s = 0; s < n; ++s) {
        scores[s] = exp_approx(scores[s] - max_score);
        total += scores[s];
    }
    for (int64_t d = 0; d < D; ++d) out[d] = 0;
    for (int64_t s = 0; s < n; ++s) {
        const float w = scores[s] / total;
        const float* vs = v + s * KV;
        for (int64_t d = 0; d < D; ++d) out[d] += w * vs[d];
    }
}

}  // namespace

void kv_cache_write(Tensor k_cache, Tensor v_cache, Tensor qkv, int64_t H, int64_t Hkv,
                    int64_t pos) {
    const int64_t B = qkv.size(0), Tq = qkv.size(1), W = qkv.size(2), D = W / (H + 2 * Hkv);
    const int64_t S = k_cache.size(1), KV = Hkv * D;
    for (int64_t b = 0; b < B; ++b)
        for (int64_t t = 0; t < Tq; ++t) {
            const float* row = qkv.as<float>() + (b * Tq + t) * W;
            std::memcpy(k_cache.as<float>() + (b * S + pos + t) * KV, row + H * D, KV * sizeof(float));
            std::memcpy(v_cache.as<float>() + (b * S + pos + t) * KV, row + (H + Hkv) * D,
                        KV * sizeof(float));
        }
}

void attention_cached_forward(Tensor out, Tensor qkv, Tensor k_cache, Tensor v_cache, int64_t H,
                              int64_t Hkv, int64_t pos) {
    const int64_t B = qkv.size(0), Tq = qkv.size(1), W = qkv.size(2), D = W / (H + 2 * Hkv);
    const int64_t S = k_cache.size(1), KV = Hkv * D, group = H / Hkv;
    const float scale = 1.0f / std::sqrt(float(D));
    const int64_t rows = B * Tq * H;
#pragma omp parallel
    {
        std::vector<float> scores(pos + Tq);
#pragma omp for schedule(static)
        for (int64_t r = 0; r < rows; ++r) {
            const int64_t h = r % H, t = (r / H) % Tq, b = r / (H * Tq), g = h / group;
            attend_row(out.as<float>() + (b * Tq + t) * H * D + h * D, scores.data(),
                       qkv.as<float>() + (b * Tq + t) * W + h * D,
                       k_cache.as<float>() + b * S * KV + g * D,
                       v_cache.as<float>() + b * S * KV + g * D, pos + t + 1, D, KV, scale);
        }
    }
}

}  // namespace tandem::backend::cpu

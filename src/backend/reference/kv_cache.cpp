// Reference attention over a key/value cache: copy the new keys and values in, then one query
// row at a time, scores in double over the cached positions it may see.
#include <cmath>
#include <vector>

#include "backend/reference/kernels.h"

namespace tandem::backend::reference {

template <typename Real>
void kv_cache_write(Tensor k_cache, Tensor v_cache, Tensor qkv, int64_t H, int64_t Hkv,
                    int64_t pos) {
    const int64_t B = qkv.size(0), Tq = qkv.size(1), W = qkv.size(2), D = W / (H + 2 * Hkv);
    const int64_t S = k_cache.size(1), KV = Hkv * D;
    for (int64_t b = 0; b < B; ++b)
        for (int64_t t = 0; t < Tq; ++t) {
            const Real* row = qkv.as<Real>() + (b * Tq + t) * W;
            Real* k = k_cache.as<Real>() + (b * S + pos + t) * KV;
            Real* v = v_cache.as<Real>() + (b * S + pos + t) * KV;
            for (int64_t i = 0; i < KV; ++i) {
                k[i] = row[H * D + i];
                v[i] = row[(H + Hkv) * D + i];
            }
        }
}

template <typename Real>
void attention_cached_forward(Tensor out, Tensor qkv, Tensor k_cache, Tensor v_cache, int64_t H,
                              int64_t Hkv, int64_t pos) {
    const int64_t B = qkv.size(0), Tq = qkv.size(1), W = qkv.size(2), D = W / (H + 2 * Hkv);
    const int64_t S = k_cache.size(1), KV = Hkv * D;
    const double scale = 1.0 / std::sqrt(double(D));
    std::vector<double> p;
    for (int64_t b = 0; b < B; ++b)
        for (int64_t t = 0; t < Tq; ++t)
            for (int64_t h = 0; h < H; ++h) {
                const int64_t g = h / (H / Hkv), n = pos + t + 1;  // visible positions
                const Real* q = qkv.as<Real>() + (b * Tq + t) * W + h * D;
                p.assign(n, 0.0);
                double max_score = -INFINITY;
                for (int64_t s = 0; s < n; ++s) {
                    const Real* k = k_cache.as<Real>() + (b * S + s) * KV + g * D;
                    double dot = 0;
                    for (int64_t d = 0; d < D; ++d) dot += double(q[d]) * k[d];
                    p[s] = dot * scale;
                    max_score = std::max(max_score, p[s]);
                }
                double total = 0;
                for (auto& x : p) total += (x = std::exp(x - max_score));
                Real* o = out.as<Real>() + (b * Tq + t) * H * D + h * D;
                for (int64_t d = 0; d < D; ++d) {
                    double acc = 0;
                    for (int64_t s = 0; s < n; ++s)
                        acc += p[s] * v_cache.as<Real>()[(b * S + s) * KV + g * D + d];
                    o[d] = static_cast<Real>(acc / total);
                }
            }
}

TANDEM_REFERENCE_INSTANTIATE(kv_cache_write, Tensor, Tensor, Tensor, int64_t, int64_t, int64_t);
TANDEM_REFERENCE_INSTANTIATE(attention_cached_forward, Tensor, Tensor, Tensor, Tensor, int64_t,
                             int64_t, int64_t);

}  // namespace tandem::backend::reference

// The AVX2 build of the prefill blocks of paged attention (paged_attention_tiles.h): 8 lanes,
// scores in 6 x 2 tiles (6 query vectors against 16 keys: 12 accumulators of the 16 registers),
// values in 6 x 2 tiles (6 query vectors, 16 of d).
#include <algorithm>
#include <cmath>
#include <vector>

#include "backend/cpu/paged_attention_blocks.h"
#include "backend/cpu/simd.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

// Everything below, the tiles included, is compiled for AVX2 with FMA; nothing below is called
// unless the CPU has them (paged_block_kernel).
#pragma GCC push_options
#pragma GCC target("avx2,fma")

namespace tandem::backend::cpu {
namespace {
struct Vec {
    using V = __m256;
    static constexpr int kLanes = 8;
    static constexpr int kScoreRows = 6, kScoreVecs = 2;
    static constexpr int kValueRows = 6, kValueVecs = 2;
    static V zero() { return _mm256_setzero_ps(); }
    static V load(const float* p) { return _mm256_loadu_ps(p); }
    static void store(float* p, V x) { _mm256_storeu_ps(p, x); }
    static V set1(float x) { return _mm256_set1_ps(x); }
    static V fma(V a, V b, V c) { return _mm256_fmadd_ps(a, b, c); }
    // The largest (the sum) of s[0, n), n >= 1: whole vectors, the lanes folded, then the rest.
    static float max_of(const float* s, int64_t n) {
        V m = _mm256_set1_ps(-INFINITY);
        int64_t i = 0;
        for (; i + kLanes <= n; i += kLanes) m = _mm256_max_ps(m, _mm256_loadu_ps(s + i));
        __m128 h = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
        h = _mm_max_ps(h, _mm_movehl_ps(h, h));
        h = _mm_max_ss(h, _mm_movehdup_ps(h));
        float r = _mm_cvtss_f32(h);
        for (; i < n; ++i) r = s[i] > r ? s[i] : r;
        return r;
    }
    static float sum_of(const float* s, int64_t n) {
        V t = _mm256_setzero_ps();
        int64_t i = 0;
        for (; i + kLanes <= n; i += kLanes) t = _mm256_add_ps(t, _mm256_loadu_ps(s + i));
        __m128 h = _mm_add_ps(_mm256_castps256_ps128(t), _mm256_extractf128_ps(t, 1));
        h = _mm_add_ps(h, _mm_movehl_ps(h, h));
        h = _mm_add_ss(h, _mm_movehdup_ps(h));
        float r = _mm_cvtss_f32(h);
        for (; i < n; ++i) r += s[i];
        return r;
    }
};
}  // namespace

#include "backend/cpu/paged_attention_tiles.h"

void paged_block_avx2(const PagedBlock& b, std::vector<float>& scratch) {
    run_block(b, scratch);
}

}  // namespace tandem::backend::cpu

#pragma GCC pop_options
#else
namespace tandem::backend::cpu {
void paged_block_avx2(const PagedBlock& b, std::vector<float>& scratch) {
    paged_block_generic(b, scratch);  // (never chosen: no x86-64 AVX2 here)
}
}  // namespace tandem::backend::cpu
#endif

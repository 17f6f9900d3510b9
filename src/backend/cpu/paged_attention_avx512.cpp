// The AVX-512 build of the prefill blocks of paged attention (paged_attention_tiles.h): 16 lanes,
// scores in 6 x 4 tiles (6 query vectors against 64 keys: 24 accumulators, 4 loads of K^T and
// 6 broadcasts per 24 FMAs), values in 6 x 4 tiles (6 query vectors, 64 of d).
#include <algorithm>
#include <cmath>
#include <vector>

#include "backend/cpu/paged_attention_blocks.h"
#include "backend/cpu/simd.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

// Everything below, the tiles included, is compiled for AVX-512; nothing below is called
// unless the CPU has it (paged_block_kernel).
#pragma GCC diagnostic ignored "-Wuninitialized"  // GCC 12's AVX-512 headers (see gemm_avx512.cpp)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC push_options
#pragma GCC target("avx512f,avx512vl,avx512dq,fma")

namespace tandem::backend::cpu {
namespace {
struct Vec {
    using V = __m512;
    static constexpr int kLanes = 16;
    static constexpr int kScoreRows = 6, kScoreVecs = 4;
    static constexpr int kValueRows = 6, kValueVecs = 4;
    static V zero() { return _mm512_setzero_ps(); }
    static V load(const float* p) { return _mm512_loadu_ps(p); }
    static void store(float* p, V x) { _mm512_storeu_ps(p, x); }
    static V set1(float x) { return _mm512_set1_ps(x); }
    static V fma(V a, V b, V c) { return _mm512_fmadd_ps(a, b, c); }
    // The largest (the sum) of s[0, n), n >= 1: whole vectors, then a masked one.
    static float max_of(const float* s, int64_t n) {
        V m = _mm512_set1_ps(-INFINITY);
        int64_t i = 0;
        for (; i + kLanes <= n; i += kLanes) m = _mm512_max_ps(m, _mm512_loadu_ps(s + i));
        const __mmask16 rest = static_cast<__mmask16>((1u << (n - i)) - 1);
        m = _mm512_mask_max_ps(m, rest, m, _mm512_maskz_loadu_ps(rest, s + i));
        return _mm512_reduce_max_ps(m);
    }
    static float sum_of(const float* s, int64_t n) {
        V t = _mm512_setzero_ps();
        int64_t i = 0;
        for (; i + kLanes <= n; i += kLanes) t = _mm512_add_ps(t, _mm512_loadu_ps(s + i));
        const __mmask16 rest = static_cast<__mmask16>((1u << (n - i)) - 1);
        t = _mm512_add_ps(t, _mm512_maskz_loadu_ps(rest, s + i));
        return _mm512_reduce_add_ps(t);
    }
};
}  // namespace

#include "backend/cpu/paged_attention_tiles.h"

void paged_block_avx512(const PagedBlock& b, std::vector<float>& scratch) {
    run_block(b, scratch);
}

}  // namespace tandem::backend::cpu

#pragma GCC pop_options
#else
namespace tandem::backend::cpu {
void paged_block_avx512(const PagedBlock& b, std::vector<float>& scratch) {
    paged_block_generic(b, scratch);  // (never chosen: no x86-64 AVX-512 here)
}
}  // namespace tandem::backend::cpu
#endif

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

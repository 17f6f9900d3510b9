// The portable build of the prefill blocks of paged attention (paged_attention_tiles.h): one
// float a "vector", tiles of 4 query vectors against 4 keys (scores) or 4 of d (values), left
// to the compiler's baseline (SSE2 on x86-64). The path of CPUs without AVX2, and of
// TANDEM_CPU_ISA=generic.
#include <algorithm>
#include <cmath>
#include <vector>

#include "backend/cpu/paged_attention_blocks.h"
#include "backend/cpu/simd.h"

namespace tandem::backend::cpu {
namespace {
struct Vec {
    using V = float;
    static constexpr int kLanes = 1;
    static constexpr int kScoreRows = 4, kScoreVecs = 4;
    static constexpr int kValueRows = 4, kValueVecs = 4;
    static V zero() { return 0.0f; }
    static V load(const float* p) { return *p; }
    static void store(float* p, V x) { *p = x; }
    static V set1(float x) { return x; }
    static V fma(V a, V b, V c) { return a * b + c; }
    static float max_of(const float* s, int64_t n) {
        float m = s[0];
        for (int64_t i = 1; i < n; ++i) m = s[i] > m ? s[i] : m;
        return m;
    }
    static float sum_of(const float* s, int64_t n) {
        float t = 0.0f;
        for (int64_t i = 0; i < n; ++i) t += s[i];
        return t;
    }
};
}  // namespace

#include "backend/cpu/paged_attention_tiles.h"

void paged_block_generic(const PagedBlock& b, std::vector<float>& scratch) {
    run_block(b, scratch);
}

}  // namespace tandem::backend::cpu

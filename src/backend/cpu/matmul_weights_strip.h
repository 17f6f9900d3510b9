// The strips of the row tiles (RowsKernels in matmul_weights_kernels.h): a tile of Q8_0 or Q4_0
// weight rows unpacked block by block into 32 bytes per row plus the rows' scales as f32, in the
// offset each instruction set's tile wants (unsigned for VNNI, signed for AMX). Shared by
// matmul_weights_avx512.cpp and matmul_weights_amx.cpp, whose targets include AVX2 and F16C.
#pragma once

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

#include <cstdint>
#include <cstring>

#include "backend/cpu/matmul_weights_kernels.h"

namespace tandem::backend::cpu {

// Per block b at strip + b * kStripBlock: q[kRows][32], then float d[kRows]. kUnsigned: Q8_0 +
// 128 and Q4_0's nibbles as they are (u8 for vpdpbusd); otherwise Q8_0 as it is and the nibbles
// minus 8 (s8 for tdpbssd).
template <bool kIsQ4, int kRows, int64_t kStripBlock, bool kUnsigned>
__attribute__((target("avx2,f16c"))) inline void strip_blocks(char* strip, const char* const* w,
                                                              int64_t blocks) {
    constexpr int64_t kBlockBytes = kIsQ4 ? 18 : 34;
    for (int64_t b = 0; b < blocks; ++b) {
        char* out = strip + b * kStripBlock;
        float* d = reinterpret_cast<float*>(out + kRows * 32);
#pragma GCC unroll 16
        for (int r = 0; r < kRows; ++r) {
            const char* p = w[r] + b * kBlockBytes;
            _mm_prefetch(p + kPrefetchAhead, _MM_HINT_T0);
            uint16_t h;
            std::memcpy(&h, p, 2);
            d[r] = _cvtsh_ss(h);
            __m256i q;
            if constexpr (kIsQ4) {  // byte j: value j in the low nibble, j + 16 in the high
                const __m128i z = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 2));
                const __m128i low = _mm_set1_epi8(0x0f);
                q = _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_and_si128(z, low)),
                                            _mm_and_si128(_mm_srli_epi16(z, 4), low), 1);
                if constexpr (!kUnsigned) q = _mm256_sub_epi8(q, _mm256_set1_epi8(8));
            } else {
                q = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 2));
                if constexpr (kUnsigned)
                    q = _mm256_xor_si256(q, _mm256_set1_epi8(static_cast<char>(0x80)));
            }
            _mm256_store_si256(reinterpret_cast<__m256i*>(out + 32 * r), q);
        }
    }
}

}  // namespace tandem::backend::cpu

#endif

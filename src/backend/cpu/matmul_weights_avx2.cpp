// The AVX2 tiles of matmul_weights (matmul_weights_kernels.h), for CPUs without AVX-512 (Zen 3):
// kTileRows weight rows against 1-2 activation rows, 8 accumulators of 8 lanes (16 vector
// registers in all). AVX2 has no 8-bit dot product: Q8_0 and Q4_0 use vpmaddubsw (u8 x s8 pairs
// to i16) and vpmaddwd (pairs of i16 to i32), one block of 32 per vector. Q8_0 takes the sign
// trick, |w| x (x with w's sign), so that no pair sum can saturate i16 (|w|, |q| <= 128, 127);
// Q4_0's nibbles are unsigned already. f16 is widened by F16C, bf16 by a shift.
#include <cstring>

#include "backend/cpu/matmul_weights_kernels.h"
#include "core/dtype.h"

// Every loop over the tile's rows and columns is unrolled (#pragma GCC unroll) so that the
// accumulators live in registers: left as loops at -O2, they sit on the stack and each step
// waits on a store (measured: 3-4x slower at N = 1).
#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define TANDEM_AVX2W __attribute__((target("avx2,fma,f16c")))
#define TANDEM_HAVE_AVX2_WEIGHTS 1
#endif

namespace tandem::backend::cpu {

#ifdef TANDEM_HAVE_AVX2_WEIGHTS

namespace {

constexpr int kAvx2Cols = 2;

TANDEM_AVX2W inline float half_at(const char* p) {
    uint16_t h;
    std::memcpy(&h, p, 2);
    return _cvtsh_ss(h);
}

TANDEM_AVX2W inline float hsum(__m256 v) {
    const __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    const __m128 t = _mm_add_ps(s, _mm_movehl_ps(s, s));
    return _mm_cvtss_f32(_mm_add_ss(t, _mm_movehdup_ps(t)));
}

// Q8_0 and Q4_0, one block per step: the int32 lanes of the block's dot product (started from the
// activation's correction for Q4_0) times d_w * d_x into f32 accumulators.
template <bool kIsQ4, int kCols>
TANDEM_AVX2W void tile_quant(const char* const* w, const char* const* a, int64_t K, float* sums) {
    const int64_t blocks = K / 32;
    const __m256i ones = _mm256_set1_epi16(1);
    __m256 acc[kTileRows][kCols];
#pragma GCC unroll 4
    for (int r = 0; r < kTileRows; ++r)
#pragma GCC unroll 4
        for (int n = 0; n < kCols; ++n) acc[r][n] = _mm256_setzero_ps();
    for (int64_t b = 0; b < blocks; ++b) {
        __m256i wq[kTileRows];
        float wd[kTileRows];  // broadcast where used: registers are short here
#pragma GCC unroll 4
        for (int r = 0; r < kTileRows; ++r) {
            _mm_prefetch(w[r] + b * (kIsQ4 ? 18 : 34) + kPrefetchAhead, _MM_HINT_T0);
            if constexpr (kIsQ4) {
                const char* p = w[r] + b * 18;
                const __m128i q = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 2));
                const __m128i mask = _mm_set1_epi8(0x0f);
                wq[r] = _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(q, 4), mask),
                                         _mm_and_si128(q, mask));
                wd[r] = half_at(p);
            } else {
                const char* p = w[r] + b * 34;
                wq[r] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 2));
                wd[r] = half_at(p);
            }
        }
#pragma GCC unroll 4
        for (int n = 0; n < kCols; ++n) {
            const char* grp = a[n] + b * 96;
            const __m256i xq = _mm256_load_si256(reinterpret_cast<const __m256i*>(grp));
            const __m256 xd = _mm256_load_ps(reinterpret_cast<const float*>(grp + 32));
#pragma GCC unroll 4
            for (int r = 0; r < kTileRows; ++r) {
                __m256i dot;
                if constexpr (kIsQ4) {
                    const __m256i corr =
                        _mm256_load_si256(reinterpret_cast<const __m256i*>(grp + 64));
                    dot = _mm256_add_epi32(
                        _mm256_madd_epi16(_mm256_maddubs_epi16(wq[r], xq), ones), corr);
                } else {
                    const __m256i pairs = _mm256_maddubs_epi16(_mm256_sign_epi8(wq[r], wq[r]),
                                                               _mm256_sign_epi8(xq, wq[r]));
                    dot = _mm256_madd_epi16(pairs, ones);
                }
                acc[r][n] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot), _mm256_mul_ps(_mm256_set1_ps(wd[r]), xd),
                                            acc[r][n]);
            }
        }
    }
#pragma GCC unroll 4
    for (int r = 0; r < kTileRows; ++r)
#pragma GCC unroll 4
        for (int n = 0; n < kCols; ++n) sums[r * kCols + n] = hsum(acc[r][n]);
}

template <DType kW>
TANDEM_AVX2W inline __m256 load_wide(const char* row, int64_t k) {
    if constexpr (kW == DType::F32) {
        return _mm256_loadu_ps(reinterpret_cast<const float*>(row) + k);
    } else {
        const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(row + 2 * k));
        if constexpr (kW == DType::F16) return _mm256_cvtph_ps(h);
        return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
    }
}

// f32, f16 and bf16 widened: 8 values of K per step, the last K % 8 one by one.
template <DType kW, int kCols>
TANDEM_AVX2W void tile_wide(const char* const* w, const char* const* a, int64_t K, float* sums) {
    __m256 acc[kTileRows][kCols];
#pragma GCC unroll 4
    for (int r = 0; r < kTileRows; ++r)
#pragma GCC unroll 4
        for (int n = 0; n < kCols; ++n) acc[r][n] = _mm256_setzero_ps();
    int64_t k = 0;
    for (; k + 8 <= K; k += 8) {
        __m256 wv[kTileRows];
#pragma GCC unroll 4
        for (int r = 0; r < kTileRows; ++r) {
            _mm_prefetch(w[r] + k * dtype_size(kW) + kPrefetchAhead, _MM_HINT_T0);
            wv[r] = load_wide<kW>(w[r], k);
        }
#pragma GCC unroll 4
        for (int n = 0; n < kCols; ++n) {
            const __m256 xv = _mm256_loadu_ps(reinterpret_cast<const float*>(a[n]) + k);
#pragma GCC unroll 4
            for (int r = 0; r < kTileRows; ++r) acc[r][n] = _mm256_fmadd_ps(wv[r], xv, acc[r][n]);
        }
    }
#pragma GCC unroll 4
    for (int r = 0; r < kTileRows; ++r)
#pragma GCC unroll 4
        for (int n = 0; n < kCols; ++n) {
            float s = hsum(acc[r][n]);
            for (int64_t j = k; j < K; ++j)
                s += element_at<kW>(w[r], j) * reinterpret_cast<const float*>(a[n])[j];
            sums[r * kCols + n] = s;
        }
}

// Rows widened to f32 for prefill's panels, 8 values per step.
template <DType kW>
TANDEM_AVX2W void widen(float* out, const char* row, int64_t K) {
    if constexpr (kW == DType::Q8_0 || kW == DType::Q4_0) {
        constexpr int64_t kBlockBytes = kW == DType::Q8_0 ? 34 : 18;
        for (int64_t b = 0; b < K / 32; ++b) {
            const char* p = row + b * kBlockBytes;
            const __m256 d = _mm256_set1_ps(half_at(p));
            for (int j = 0; j < 4; ++j) {  // values 8j .. 8j + 7
                __m256i v;
                if constexpr (kW == DType::Q8_0) {
                    v = _mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p + 2 + 8 * j)));
                } else {
                    const __m256i q = _mm256_cvtepu8_epi32(
                        _mm_loadl_epi64(reinterpret_cast<const __m128i*>(p + 2 + 8 * (j % 2))));
                    v = j < 2 ? _mm256_and_si256(q, _mm256_set1_epi32(15)) : _mm256_srli_epi32(q, 4);
                    v = _mm256_sub_epi32(v, _mm256_set1_epi32(8));
                }
                _mm256_storeu_ps(out + 32 * b + 8 * j, _mm256_mul_ps(_mm256_cvtepi32_ps(v), d));
            }
        }
    } else {
        int64_t k = 0;
        for (; k + 8 <= K; k += 8) _mm256_storeu_ps(out + k, load_wide<kW>(row, k));
        for (; k < K; ++k) out[k] = element_at<kW>(row, k);
    }
}

template <class Tile>
constexpr DTypeKernels kernels_of(ActivationForm form, QuantGroups groups, WidenFn widen_row) {
    return {form, groups, kAvx2Cols,
            {Tile::template fn<1>, Tile::template fn<2>, nullptr, nullptr}, widen_row, {}};
}
template <bool kIsQ4>
struct QuantTile {
    template <int kCols>
    static constexpr TileFn fn = &tile_quant<kIsQ4, kCols>;
};
template <DType kW>
struct WideTile {
    template <int kCols>
    static constexpr TileFn fn = &tile_wide<kW, kCols>;
};

}  // namespace

constinit const WeightKernels kAvx2WeightKernels{
    kernels_of<WideTile<DType::F32>>(ActivationForm::f32, {1, 0}, &widen<DType::F32>),
    kernels_of<WideTile<DType::F16>>(ActivationForm::f32, {1, 0}, &widen<DType::F16>),
    kernels_of<WideTile<DType::BF16>>(ActivationForm::f32, {1, 0}, &widen<DType::BF16>),
    kernels_of<QuantTile<false>>(ActivationForm::q8, {1, 0}, &widen<DType::Q8_0>),
    kernels_of<QuantTile<true>>(ActivationForm::q8, {1, 8}, &widen<DType::Q4_0>),
};

#else

constinit const WeightKernels kAvx2WeightKernels{};

#endif

}  // namespace tandem::backend::cpu

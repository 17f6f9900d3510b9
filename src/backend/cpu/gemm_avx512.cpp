// tandem's AVX-512 kernel for the blocked product of gemm_blocked.h: an 8 x 48 register tile,
// 24 accumulators of 16 floats, three loads of B and eight broadcasts of A per step of k, 24 FMAs.
// Edges are handled by zero-padded panels and masked stores.
#include <algorithm>
#include <iterator>

#include "backend/cpu/gemm_blocked.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

// GCC 12 takes the intrinsics' own _mm512_undefined_ps() for an uninitialised read (a false
// positive of its AVX-512 headers once inlined at -O3).
#pragma GCC diagnostic ignored "-Wuninitialized"
#define TANDEM_AVX512 __attribute__((target("avx512f,avx512vl,avx512dq")))
#define TANDEM_HAVE_AVX512_GEMM 1
#endif

namespace tandem::backend::cpu {

#ifdef TANDEM_HAVE_AVX512_GEMM

namespace {

// Zeros standing in for the rows past the edge of A or B while packing.
alignas(64) const float kZeros[512] = {};  // one K slice

// Transposes 8 rows of 16 floats (rows[i][0..15]) into 16 rows of 8: dst[k * stride + i].
// Half of transpose_8x16's last step: kLanes selects lanes 0-1 (0x44) or 2-3 (0xEE) of each
// u pair. The selector is an instruction immediate, so each half is its own instantiation.
template <int kLanes>
TANDEM_AVX512 inline void store_half_of_lanes(float* dst, int64_t stride, const __m512 u[8], int half) {
    for (int j = 0; j < 4; j += 2) {
        const __m512 a = _mm512_shuffle_f32x4(u[j], u[4 + j], kLanes);
        const __m512 b = _mm512_shuffle_f32x4(u[j + 1], u[5 + j], kLanes);
        const __m512 lo = _mm512_shuffle_f32x4(a, b, 0x88);  // k = 8 half + j, j + 1
        const __m512 hi = _mm512_shuffle_f32x4(a, b, 0xDD);  // k = 8 half + 4 + j, 5 + j
        const int64_t k = 8 * half + j;
        _mm256_storeu_ps(dst + (k + 0) * stride, _mm512_castps512_ps256(lo));
        _mm256_storeu_ps(dst + (k + 1) * stride, _mm512_extractf32x8_ps(lo, 1));
        _mm256_storeu_ps(dst + (k + 4) * stride, _mm512_castps512_ps256(hi));
        _mm256_storeu_ps(dst + (k + 5) * stride, _mm512_extractf32x8_ps(hi, 1));
    }
}

TANDEM_AVX512 inline void transpose_8x16(const float* const rows[8], float* dst, int64_t stride) {
    __m512 r[8], t[8], u[8];
    for (int i = 0; i < 8; ++i) r[i] = _mm512_loadu_ps(rows[i]);
    for (int i = 0; i < 8; i += 2) {
        t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);      // per lane: k 4l, 4l+1 of rows i, i+1
        t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);  // k 4l+2, 4l+3
    }
    for (int h = 0; h < 8; h += 4) {  // rows 0-3, then 4-7: per lane, one k for four rows
        u[h + 0] = _mm512_shuffle_ps(t[h], t[h + 2], 0x44);      // k 4l
        u[h + 1] = _mm512_shuffle_ps(t[h], t[h + 2], 0xEE);      // k 4l+1
        u[h + 2] = _mm512_shuffle_ps(t[h + 1], t[h + 3], 0x44);  // k 4l+2
        u[h + 3] = _mm512_shuffle_ps(t[h + 1], t[h + 3], 0xEE);  // k 4l+3
    }
    // u[j] lane l holds rows 0-3 of k = 4l + j, u[4 + j] rows 4-7: pair them into whole k rows.
    store_half_of_lanes<0x44>(dst, stride, u, 0);  // lanes 0-1: k 0-7
    store_half_of_lanes<0xEE>(dst, stride, u, 1);  // lanes 2-3: k 8-15
}

// Packs `width` (<= 8) strided rows into a panel of 8: dst[k * stride + i] = rows[i][k], k < kc,
// where the rows are rows of the stored matrix read across (a row of A, or a column of op(B)
// stored as a row of B). Missing rows are zeros.
TANDEM_AVX512 void pack_across(const float* src, int64_t ld, int64_t width, int64_t kc, float* dst,
                               int64_t stride) {
    const float* rows[8];
    for (int64_t i = 0; i < 8; ++i) rows[i] = i < width ? src + i * ld : kZeros;
    int64_t k = 0;
    for (; k + 16 <= kc; k += 16) {
        const float* at[8];
        for (int i = 0; i < 8; ++i) at[i] = rows[i] == kZeros ? kZeros : rows[i] + k;
        transpose_8x16(at, dst + k * stride, stride);
    }
    for (; k < kc; ++k)
        for (int64_t i = 0; i < 8; ++i) dst[k * stride + i] = i < width ? rows[i][k] : 0.0f;
}

// Packs kc rows of `count` contiguous floats (src[k * ld + n]) into panels of kWidth columns,
// panel p at dst + p * kWidth * kc holding dst[.. + k * kWidth + n % kWidth], the missing
// columns of the last panel zero. Goes through the source 16 rows at a time, each panel in
// turn: the source rows stream in whole (better than a few lines of every row per panel when
// they come from memory), and each panel gets a contiguous run of writes (panels lie a power
// of two apart, so writing all of them row by row would thrash one set of L1).
template <int64_t kWidth>
TANDEM_AVX512 void pack_along(const float* src, int64_t ld, int64_t count, int64_t kc, float* dst) {
    static_assert(kWidth == 8 || kWidth % 16 == 0);
    constexpr int64_t kRows = 16;
    const int64_t panels = ceil_div(count, kWidth);
    for (int64_t k0 = 0; k0 < kc; k0 += kRows) {
        const int64_t k1 = std::min(kc, k0 + kRows);
        for (int64_t p = 0; p < panels; ++p) {
            const float* from = src + p * kWidth;
            float* out = dst + p * kWidth * kc;
            if constexpr (kWidth == 8) {
                const int64_t width = std::min<int64_t>(8, count - p * 8);
                const __mmask8 mask = static_cast<__mmask8>((1u << width) - 1);
                for (int64_t k = k0; k < k1; ++k)
                    _mm256_store_ps(out + k * 8, _mm256_maskz_loadu_ps(mask, from + k * ld));
            } else {
                for (int64_t v = 0; v < kWidth; v += 16) {
                    const int64_t width = std::clamp<int64_t>(count - p * kWidth - v, 0, 16);
                    const __mmask16 mask = static_cast<__mmask16>((1u << width) - 1);
                    for (int64_t k = k0; k < k1; ++k)
                        _mm512_store_ps(out + k * kWidth + v,
                                        _mm512_maskz_loadu_ps(mask, from + k * ld + v));
                }
            }
        }
    }
}

struct Avx512Kernel {
    // Sizes measured on a 2-core Zen 5 (bench/gemm_bench.cpp): the slice is as long as it can be
    // before the B panel's trips through L2 cost more than reloading the C tile saves.
    static constexpr int64_t kMr = 8;     // rows of the register tile
    static constexpr int64_t kNr = 48;    // columns of the register tile: three vectors
    static constexpr int64_t kKc = 512;   // K slice: an A panel of 16 KB, a B panel of 96 KB
    static constexpr int64_t kMc = 128;   // rows packed at once: 256 KB of A, in L2
    static constexpr int64_t kNc = 1536;  // columns packed at once: 3 MB of B, in L3
    static constexpr bool kAllOfK = true;
    static_assert(kKc <= std::size(kZeros));

    // Rows [m0, m0 + mc) and K slice [p0, p0 + kc) of op(A) as panels of 8 rows: panel[k * 8 + i].
    static TANDEM_AVX512 void pack_a(const GemmArgs& x, int64_t m0, int64_t mc, int64_t p0,
                                     int64_t kc, float* panels) {
        if (x.trans_a) {  // A is [K, M]: the rows of a panel are contiguous in each row of A
            pack_along<kMr>(x.a + p0 * x.lda + m0, x.lda, mc, kc, panels);
            return;
        }
        for (int64_t i = 0; i < mc; i += kMr)
            pack_across(x.a + (m0 + i) * x.lda + p0, x.lda, std::min(kMr, mc - i), kc,
                        panels + i * kc, kMr);
    }

    // Columns [n0, n0 + nc) and K slice [p0, p0 + kc) of op(B) as panels of 48: panel[k * 48 + n].
    static TANDEM_AVX512 void pack_b(const GemmArgs& x, int64_t n0, int64_t nc, int64_t p0,
                                     int64_t kc, float* panels) {
        if (!x.trans_b) {
            pack_along<kNr>(x.b + p0 * x.ldb + n0, x.ldb, nc, kc, panels);
            return;
        }
        // B is [N, K]: a column of op(B) is a row of B, eight of them at a time, on to the end of
        // the last panel (its missing columns zero, as pack_along leaves them).
        for (int64_t j = 0; j < ceil_div(nc, kNr) * kNr; j += kMr) {
            const float* rows = j < nc ? x.b + (n0 + j) * x.ldb + p0 : kZeros;
            pack_across(rows, x.ldb, std::clamp<int64_t>(nc - j, 0, kMr), kc,
                        panels + (j / kNr) * kNr * kc + j % kNr, kNr);
        }
    }

    // C tile [rows x cols] (at most 8 x 48) = or += A panel x B panel over kc.
    static TANDEM_AVX512 void tile(int64_t kc, const float* __restrict ap,
                                   const float* __restrict bp, float* c, int64_t ldc,
                                   bool accumulate, int64_t rows, int64_t cols) {
        // The tile of C is read or written only after the k loop: ask for its lines now, so that
        // they arrive from memory while the loop runs instead of stalling the stores.
        for (int64_t i = 0; i < rows; ++i)
            for (int j = 0; j < 3; ++j)
                _mm_prefetch(reinterpret_cast<const char*>(c + i * ldc + 16 * j), _MM_HINT_T0);
        // (Every loop over acc is unrolled, so that acc lives in registers.)
        __m512 acc[kMr][3];
#pragma GCC unroll 8
        for (int i = 0; i < kMr; ++i)
#pragma GCC unroll 3
            for (int j = 0; j < 3; ++j) acc[i][j] = _mm512_setzero_ps();
        for (int64_t k = 0; k < kc; ++k) {
            const __m512 b0 = _mm512_load_ps(bp), b1 = _mm512_load_ps(bp + 16),
                         b2 = _mm512_load_ps(bp + 32);
#pragma GCC unroll 8
            for (int i = 0; i < kMr; ++i) {
                const __m512 x = _mm512_set1_ps(ap[i]);
                acc[i][0] = _mm512_fmadd_ps(x, b0, acc[i][0]);
                acc[i][1] = _mm512_fmadd_ps(x, b1, acc[i][1]);
                acc[i][2] = _mm512_fmadd_ps(x, b2, acc[i][2]);
            }
            ap += kMr;
            bp += kNr;
        }
        if (rows == kMr && cols == kNr) {
#pragma GCC unroll 8
            for (int i = 0; i < kMr; ++i)
#pragma GCC unroll 3
                for (int j = 0; j < 3; ++j) {
                    float* p = c + i * ldc + 16 * j;
                    _mm512_storeu_ps(
                        p, accumulate ? _mm512_add_ps(_mm512_loadu_ps(p), acc[i][j]) : acc[i][j]);
                }
            return;
        }
        // An edge tile: through a buffer, rows past the edge not stored, columns past it masked
        // off.
        alignas(64) float edge[kMr][kNr];
#pragma GCC unroll 8
        for (int i = 0; i < kMr; ++i)
#pragma GCC unroll 3
            for (int j = 0; j < 3; ++j) _mm512_store_ps(&edge[i][16 * j], acc[i][j]);
        for (int64_t i = 0; i < rows; ++i)
            for (int j = 0; j < 3; ++j) {
                const int64_t width = std::clamp<int64_t>(cols - 16 * j, 0, 16);
                const __mmask16 mask = static_cast<__mmask16>((1u << width) - 1);
                float* p = c + i * ldc + 16 * j;
                const __m512 v = _mm512_load_ps(&edge[i][16 * j]);
                _mm512_mask_storeu_ps(
                    p, mask, accumulate ? _mm512_add_ps(_mm512_maskz_loadu_ps(mask, p), v) : v);
            }
    }
};

}  // namespace

constinit const KernelEntries kAvx512Entries = entries_of<Avx512Kernel>();

#else  // no AVX-512 code on this compiler or architecture

constinit const KernelEntries kAvx512Entries{};

#endif

}  // namespace tandem::backend::cpu

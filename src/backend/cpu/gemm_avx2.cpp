// tandem's AVX2 kernel for the blocked product of gemm_blocked.h, for CPUs with AVX2 and FMA but
// no AVX-512: a 6 x 16 register tile, 12 accumulators of 8 floats, two loads of B and six
// broadcasts of A per step of k, 12 FMAs (with the two B vectors and the broadcast, 15 of the 16
// vector registers). Edges are handled by zero-padded panels and an edge tile stored element by
// element.
#include <algorithm>
#include <cstring>
#include <iterator>

#include "backend/cpu/gemm_blocked.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define TANDEM_AVX2 __attribute__((target("avx2,fma")))
#define TANDEM_HAVE_AVX2_GEMM 1
#endif

namespace tandem::backend::cpu {

#ifdef TANDEM_HAVE_AVX2_GEMM

namespace {

// Zeros standing in for the rows past the edge of A or B while packing.
alignas(64) const float kZeros[384] = {};  // one K slice

// Transposes 8 rows of 8 floats: out[k] lane i = rows[i][k].
TANDEM_AVX2 inline void transpose_8x8(const float* const rows[8], __m256 out[8]) {
    __m256 t[8], u[8];
    for (int i = 0; i < 8; i += 2) {
        const __m256 r0 = _mm256_loadu_ps(rows[i]), r1 = _mm256_loadu_ps(rows[i + 1]);
        t[i] = _mm256_unpacklo_ps(r0, r1);      // per 128-bit half h: k 4h, 4h+1 of rows i, i+1
        t[i + 1] = _mm256_unpackhi_ps(r0, r1);  // k 4h+2, 4h+3
    }
    for (int h = 0; h < 8; h += 4) {  // rows 0-3, then 4-7: per half, one k for four rows
        u[h + 0] = _mm256_shuffle_ps(t[h], t[h + 2], 0x44);      // k 4h
        u[h + 1] = _mm256_shuffle_ps(t[h], t[h + 2], 0xEE);      // k 4h+1
        u[h + 2] = _mm256_shuffle_ps(t[h + 1], t[h + 3], 0x44);  // k 4h+2
        u[h + 3] = _mm256_shuffle_ps(t[h + 1], t[h + 3], 0xEE);  // k 4h+3
    }
    // u[j] half h holds rows 0-3 of k = 4h + j, u[4 + j] rows 4-7: join the halves.
    for (int j = 0; j < 4; ++j) {
        out[j] = _mm256_permute2f128_ps(u[j], u[4 + j], 0x20);
        out[4 + j] = _mm256_permute2f128_ps(u[j], u[4 + j], 0x31);
    }
}

// Packs `width` (<= kRows) strided rows into a panel slot of kRows values per k:
// dst[k * stride + i] = rows[i][k], k < kc, where the rows are rows of the stored matrix read
// across (a row of A, or a column of op(B) stored as a row of B). Missing rows are zeros.
template <int kRows>
TANDEM_AVX2 void pack_across(const float* src, int64_t ld, int64_t width, int64_t kc, float* dst,
                             int64_t stride) {
    static_assert(kRows == 6 || kRows == 8);
    const float* rows[8];
    for (int64_t i = 0; i < 8; ++i) rows[i] = i < width ? src + i * ld : kZeros;
    int64_t k = 0;
    for (; k + 8 <= kc; k += 8) {
        const float* at[8];
        for (int i = 0; i < 8; ++i) at[i] = rows[i] == kZeros ? kZeros : rows[i] + k;
        __m256 columns[8];
        transpose_8x8(at, columns);
        for (int j = 0; j < 8; ++j) {
            float* out = dst + (k + j) * stride;
            if constexpr (kRows == 8) {
                _mm256_storeu_ps(out, columns[j]);
            } else {  // the first six lanes: four, then two
                _mm_storeu_ps(out, _mm256_castps256_ps128(columns[j]));
                _mm_storel_pi(reinterpret_cast<__m64*>(out + 4),
                              _mm256_extractf128_ps(columns[j], 1));
            }
        }
    }
    for (; k < kc; ++k)
        for (int64_t i = 0; i < kRows; ++i) dst[k * stride + i] = i < width ? rows[i][k] : 0.0f;
}

// Packs kc rows of `count` contiguous floats (src[k * ld + n]) into panels of kWidth columns,
// panel p at dst + p * kWidth * kc holding dst[.. + k * kWidth + n % kWidth], the missing
// columns of the last panel zero. Goes through the source 16 rows at a time, each panel in
// turn, as the AVX-512 kernel does (whole source rows stream in, each panel gets a run of
// contiguous writes).
template <int64_t kWidth>
TANDEM_AVX2 void pack_along(const float* src, int64_t ld, int64_t count, int64_t kc, float* dst) {
    static_assert(kWidth == 6 || kWidth == 16);
    constexpr int64_t kRows = 16;
    const int64_t full_panels = count / kWidth, panels = ceil_div(count, kWidth);
    for (int64_t k0 = 0; k0 < kc; k0 += kRows) {
        const int64_t k1 = std::min(kc, k0 + kRows);
        for (int64_t p = 0; p < full_panels; ++p) {
            const float* from = src + p * kWidth;
            float* out = dst + p * kWidth * kc;
            for (int64_t k = k0; k < k1; ++k) {
                if constexpr (kWidth == 16) {
                    _mm256_store_ps(out + k * 16, _mm256_loadu_ps(from + k * ld));
                    _mm256_store_ps(out + k * 16 + 8, _mm256_loadu_ps(from + k * ld + 8));
                } else {
                    std::memcpy(out + k * kWidth, from + k * ld, kWidth * sizeof(float));
                }
            }
        }
        if (panels > full_panels) {  // the last, partial panel
            const int64_t p = full_panels, width = count - p * kWidth;
            for (int64_t k = k0; k < k1; ++k)
                for (int64_t n = 0; n < kWidth; ++n)
                    dst[p * kWidth * kc + k * kWidth + n] =
                        n < width ? src[k * ld + p * kWidth + n] : 0.0f;
        }
    }
}

struct Avx2Kernel {
    // Sizes measured on a 2-core Zen 3 (bench/gemm_bench.cpp, against slices of 256, 320, 448
    // and 512, blocks of 96 to 252 rows, and packing all of K first): the B panel stays in L1
    // while A's rows go past it from L2, and the slice is long enough to take llama's K of 288
    // whole and gpt2's 768 in two (each slice is a pass over C).
    static constexpr int64_t kMr = 6;     // rows of the register tile
    static constexpr int64_t kNr = 16;    // columns of the register tile: two vectors
    static constexpr int64_t kKc = 384;   // K slice: an A panel of 9 KB, a B panel of 24 KB
    static constexpr int64_t kMc = 168;   // rows packed at once: 252 KB of A, in L2
    static constexpr int64_t kNc = 4080;  // columns packed at once: 6 MB of B, in L3
    static constexpr bool kAllOfK = false;  // 5-12% slower on Zen 3 (B's panels came from L3)
    static_assert(kKc <= std::size(kZeros));

    // Rows [m0, m0 + mc) and K slice [p0, p0 + kc) of op(A) as panels of 6 rows: panel[k * 6 + i].
    static TANDEM_AVX2 void pack_a(const GemmArgs& x, int64_t m0, int64_t mc, int64_t p0,
                                   int64_t kc, float* panels) {
        if (x.trans_a) {  // A is [K, M]: the rows of a panel are contiguous in each row of A
            pack_along<kMr>(x.a + p0 * x.lda + m0, x.lda, mc, kc, panels);
            return;
        }
        for (int64_t i = 0; i < mc; i += kMr)
            pack_across<kMr>(x.a + (m0 + i) * x.lda + p0, x.lda, std::min(kMr, mc - i), kc,
                             panels + i * kc, kMr);
    }

    // Columns [n0, n0 + nc) and K slice [p0, p0 + kc) of op(B) as panels of 16: panel[k * 16 + n].
    static TANDEM_AVX2 void pack_b(const GemmArgs& x, int64_t n0, int64_t nc, int64_t p0,
                                   int64_t kc, float* panels) {
        if (!x.trans_b) {
            pack_along<kNr>(x.b + p0 * x.ldb + n0, x.ldb, nc, kc, panels);
            return;
        }
        // B is [N, K]: a column of op(B) is a row of B, eight of them at a time, on to the end of
        // the last panel (its missing columns zero, as pack_along leaves them).
        for (int64_t j = 0; j < ceil_div(nc, kNr) * kNr; j += 8) {
            const float* rows = j < nc ? x.b + (n0 + j) * x.ldb + p0 : kZeros;
            pack_across<8>(rows, x.ldb, std::clamp<int64_t>(nc - j, 0, 8), kc,
                           panels + (j / kNr) * kNr * kc + j % kNr, kNr);
        }
    }

    // C tile [rows x cols] (at most 6 x 16) = or += A panel x B panel over kc.
    static TANDEM_AVX2 void tile(int64_t kc, const float* __restrict ap, const float* __restrict bp,
                                 float* c, int64_t ldc, bool accumulate, int64_t rows,
                                 int64_t cols) {
        // The tile of C is read or written only after the k loop: ask for its lines now.
        for (int64_t i = 0; i < rows; ++i)
            for (int j = 0; j < 2; ++j)
                _mm_prefetch(reinterpret_cast<const char*>(c + i * ldc + 8 * j), _MM_HINT_T0);
        // (Every loop over acc is unrolled, so that acc lives in registers.)
        __m256 acc[kMr][2];
#pragma GCC unroll 6
        for (int i = 0; i < kMr; ++i)
#pragma GCC unroll 2
            for (int j = 0; j < 2; ++j) acc[i][j] = _mm256_setzero_ps();
        // Unrolled four times: the loop's own instructions otherwise cost Zen 3 a fifth of its rate.
#pragma GCC unroll 4
        for (int64_t k = 0; k < kc; ++k) {
            const __m256 b0 = _mm256_load_ps(bp), b1 = _mm256_load_ps(bp + 8);
#pragma GCC unroll 6
            for (int i = 0; i < kMr; ++i) {
                const __m256 a = _mm256_broadcast_ss(ap + i);
                acc[i][0] = _mm256_fmadd_ps(a, b0, acc[i][0]);
                acc[i][1] = _mm256_fmadd_ps(a, b1, acc[i][1]);
            }
            ap += kMr;
            bp += kNr;
        }
        if (rows == kMr && cols == kNr) {
#pragma GCC unroll 6
            for (int i = 0; i < kMr; ++i)
#pragma GCC unroll 2
                for (int j = 0; j < 2; ++j) {
                    float* p = c + i * ldc + 8 * j;
                    _mm256_storeu_ps(
                        p, accumulate ? _mm256_add_ps(_mm256_loadu_ps(p), acc[i][j]) : acc[i][j]);
                }
            return;
        }
        // An edge tile: through a buffer, only the elements inside C stored.
        alignas(32) float edge[kMr][kNr];
#pragma GCC unroll 6
        for (int i = 0; i < kMr; ++i)
#pragma GCC unroll 2
            for (int j = 0; j < 2; ++j) _mm256_store_ps(&edge[i][8 * j], acc[i][j]);
        for (int64_t i = 0; i < rows; ++i)
            for (int64_t j = 0; j < cols; ++j)
                c[i * ldc + j] = accumulate ? c[i * ldc + j] + edge[i][j] : edge[i][j];
    }
};

}  // namespace

constinit const KernelEntries kAvx2Entries = entries_of<Avx2Kernel>();

#else  // no AVX2 code on this compiler or architecture

constinit const KernelEntries kAvx2Entries{};

#endif

}  // namespace tandem::backend::cpu

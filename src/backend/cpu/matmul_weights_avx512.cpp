// The AVX-512 tiles of matmul_weights (matmul_weights_kernels.h): kTileRows weight rows against
// 1-4 activation rows, 16 accumulators of 16 lanes at most. Q8_0 and Q4_0 go two blocks (64
// values) per instruction through VNNI's u8 x s8 dot products (vpdpbusd) against activations in
// the q8 form; bf16 through AVX512_BF16's pair products (vdpbf16ps) against x rounded to bf16,
// or widened to f32; f16 widened by vcvtph2ps; f32 as it is. For many activation rows, Q8_0 and
// Q4_0 also have row tiles: 16 activation rows per vpdpbusd against strips of 4 weight rows.
#include <algorithm>
#include <cstring>

#include "backend/cpu/matmul_weights_kernels.h"
#include "backend/cpu/matmul_weights_strip.h"
#include "core/dtype.h"

// Every loop over the tile's rows and columns is unrolled (#pragma GCC unroll) so that the
// accumulators live in registers: left as loops at -O2, they sit on the stack and each step
// waits on a store (measured: 3-4x slower at N = 1).
#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#pragma GCC diagnostic ignored "-Wuninitialized"  // GCC 12's AVX-512 headers (see gemm_avx512.cpp)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#define TANDEM_AVX512W __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,f16c,fma")))
#define TANDEM_AVX512BF16 \
    __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,avx512bf16,f16c,fma")))
#define TANDEM_HAVE_AVX512_WEIGHTS 1
#endif

namespace tandem::backend::cpu {

#ifdef TANDEM_HAVE_AVX512_WEIGHTS

namespace {


inline uint16_t half_bits(const char* p) {
    uint16_t h;
    std::memcpy(&h, p, 2);
    return h;
}

// The scales of blocks b, b + 1 of every row of the tile (kBlockBytes apart, the f16 first in
// each block) as f32 lanes [row 0 block b, row 0 block b + 1, row 1 block b, ...]: one
// conversion for the tile instead of two per row. A missing block b + 1 gets scale 0.
template <int64_t kBlockBytes>
TANDEM_AVX512W inline __m256 tile_scales(const char* const* w, int64_t b, bool pair) {
    uint16_t h[2 * kTileRows];
#pragma GCC unroll 4
    for (int r = 0; r < kTileRows; ++r) {
        const char* p = w[r] + b * kBlockBytes;
        h[2 * r] = half_bits(p);
        h[2 * r + 1] = pair ? half_bits(p + kBlockBytes) : uint16_t(0);
    }
    return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(h)));
}

// Row r's two scales over the lanes of their blocks' int32 sums: [d0 x 8, d1 x 8], or with
// kHalves (Q4_0's order, QuantGroups) [d0 x 4, d1 x 4, d0 x 4, d1 x 4].
template <bool kHalves>
TANDEM_AVX512W inline __m512 row_scales(__m256 scales, int r) {
    const int a = 2 * r, b = 2 * r + 1;
    const __m512i index = kHalves ? _mm512_setr_epi32(a, a, a, a, b, b, b, b, a, a, a, a, b, b, b, b)
                                  : _mm512_setr_epi32(a, a, a, a, a, a, a, a, b, b, b, b, b, b, b, b);
    return _mm512_permutexvar_ps(index, _mm512_castps256_ps512(scales));
}

// Q8_0 blocks b, b + 1 of a row as unsigned bytes (w + 128, the offset of the q8 form); a missing
// second block is zeros.
TANDEM_AVX512W inline __m512i load_q8_0(const char* row, int64_t b, bool pair) {
    const char* p = row + b * 34;
    const __m256i lo = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 2));
    const __m256i hi = pair ? _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 36))
                            : _mm256_set1_epi8(static_cast<char>(0x80));
    return _mm512_xor_si512(_mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1),
                            _mm512_set1_epi8(static_cast<char>(0x80)));
}

// Q4_0 blocks b, b + 1 as their nibbles (w + 8, unsigned) in QuantGroups' `halves` order: the
// low nibbles of both blocks (values 0-15 of each), then the high ones (values 16-31). The
// blocks' 16 bytes go to alternate 128-bit lanes by broadcasting loads (load ports and a blend,
// not two shuffles on port 5), and the upper half is shifted by 4.
TANDEM_AVX512W inline __m512i load_q4_0(const char* row, int64_t b, bool pair) {
    const char* p = row + b * 18;
    const __m512i q0 =
        _mm512_broadcast_i32x4(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 2)));
    const __m512i z =
        pair ? _mm512_mask_broadcast_i32x4(
                   q0, 0xf0f0, _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 20)))
             : _mm512_maskz_mov_epi32(0x0f0f, q0);
    return _mm512_and_si512(_mm512_mask_srli_epi16(z, 0xffff0000u, z, 4),
                            _mm512_set1_epi8(0x0f));
}

// Q8_0 and Q4_0: per group of two blocks, one vpdpbusd per (row, activation row) started from
// the activation's correction, then the int32 lanes times d_w * d_x into f32 accumulators.
template <bool kIsQ4, int kCols>
TANDEM_AVX512W void tile_quant(const char* const* w, const char* const* a, int64_t K,
                               float* sums) {
    constexpr int64_t kBlockBytes = kIsQ4 ? 18 : 34;
    const int64_t blocks = K / 32, groups = (blocks + 1) / 2;
    __m512 acc[kTileRows][kCols];
#pragma GCC unroll 4
    for (int r = 0; r < kTileRows; ++r)
#pragma GCC unroll 4
        for (int n = 0; n < kCols; ++n) acc[r][n] = _mm512_setzero_ps();
    for (int64_t g = 0; g < groups; ++g) {
        const bool pair = 2 * g + 1 < blocks;
        __m256 scales = tile_scales<kBlockBytes>(w, 2 * g, pair);
        if constexpr (kCols == 1) {
            // One activation row: its two scales go into the tile's scales once, not into each
            // row's lanes ([x0, x1] repeated, from the lanes where the form keeps them).
            const __m512 xd = _mm512_load_ps(reinterpret_cast<const float*>(a[0] + g * 192 + 64));
            const int b1 = kIsQ4 ? 4 : 8;
            const __m512i pairs = _mm512_setr_epi32(0, b1, 0, b1, 0, b1, 0, b1, 0, 0, 0, 0, 0, 0, 0, 0);
            scales = _mm256_mul_ps(scales, _mm512_castps512_ps256(_mm512_permutexvar_ps(pairs, xd)));
        }
        __m512i wq[kTileRows];
        __m512 wd[kTileRows];
#pragma GCC unroll 4
        for (int r = 0; r < kTileRows; ++r) {
            // Ask for the rows ahead: the hardware prefetchers alone left a single thread at
            // under half the triad bandwidth (the rows are four streams at once).
            _mm_prefetch(w[r] + 2 * g * kBlockBytes + kPrefetchAhead, _MM_HINT_T0);
            wq[r] = kIsQ4 ? load_q4_0(w[r], 2 * g, pair) : load_q8_0(w[r], 2 * g, pair);
            wd[r] = row_scales<kIsQ4>(scales, r);
        }
#pragma GCC unroll 4
        for (int n = 0; n < kCols; ++n) {
            const char* grp = a[n] + g * 192;
            const __m512i xq = _mm512_load_si512(grp);
            const __m512i corr = _mm512_load_si512(grp + 128);
            const __m512 xd = _mm512_load_ps(reinterpret_cast<const float*>(grp + 64));
#pragma GCC unroll 4
            for (int r = 0; r < kTileRows; ++r) {
                const __m512i dot = _mm512_dpbusd_epi32(corr, wq[r], xq);
                const __m512 scale = kCols == 1 ? wd[r] : _mm512_mul_ps(wd[r], xd);
                acc[r][n] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot), scale, acc[r][n]);
            }
        }
    }
#pragma GCC unroll 4
    for (int r = 0; r < kTileRows; ++r)
#pragma GCC unroll 4
        for (int n = 0; n < kCols; ++n) sums[r * kCols + n] = _mm512_reduce_add_ps(acc[r][n]);
}

// Q8_0 and Q4_0 against one activation row (batch-1 decoding): the same sums bit for bit as
// tile_quant's (the same products into the same accumulator lanes in the same order), with less
// work per byte. The tile's rows go one after the other, each a single sequential stream; the
// scales d_w * d_x of 16 blocks at a time come from two gathers and a multiply, for row r while
// row r - 1 streams, instead of scalar loads through the stack and a permute per row and block
// pair; Q8_0 takes a block per 256-bit step, which leaves AVX-512's third vector port free. With
// the weights on huge pages (backend/host_memory.h), two cores stream Q8_0 at 87-101% of the
// triad instead of 80-87% (matmul_weights_bench, N = 1, Sapphire Rapids; docs/PERFORMANCE.md).
template <bool kIsQ4>
TANDEM_AVX512W void tile_quant_one_row(const char* const* w, const char* const* a, int64_t K,
                                       float* sums) {
    constexpr int64_t kBlockBytes = kIsQ4 ? 18 : 34;
    constexpr int kChunk = 64;  // blocks whose scales are gathered at once (4 gathers of 16)
    const int64_t blocks = K / 32;
    const int64_t next_tile = kTileRows * blocks * kBlockBytes;  // prefetched as this one runs
    const __m512i lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    // Block j of 16 from a chunk's start: its weight scale kBlockBytes j bytes on in the row; its
    // activation scale in the q8 form's group j / 2 (192 bytes each), at 64 for the first block
    // of the group and 64 + 32 (Q4_0's halves: 64 + 16) for the second.
    const __m512i w_index = _mm512_mullo_epi32(lane, _mm512_set1_epi32(kBlockBytes));
    const __m512i x_index = _mm512_add_epi32(
        _mm512_mullo_epi32(_mm512_srli_epi32(lane, 1), _mm512_set1_epi32(192)),
        _mm512_add_epi32(_mm512_set1_epi32(64),
                         _mm512_slli_epi32(_mm512_and_si512(lane, _mm512_set1_epi32(1)),
                                           kIsQ4 ? 4 : 5)));
    // Q8_0: blocks 2g and 2g + 1 in 256-bit accumulators, tile_quant's lanes 0-7 and 8-15.
    __m256 even[kTileRows], odd[kTileRows];
    __m512 both[kTileRows];  // Q4_0: tile_quant's accumulator
#pragma GCC unroll 4
    for (int r = 0; r < kTileRows; ++r) {
        even[r] = odd[r] = _mm256_setzero_ps();
        both[r] = _mm512_setzero_ps();
    }
    for (int64_t b0 = 0; b0 < blocks; b0 += kChunk) {
        const int n = static_cast<int>(std::min<int64_t>(kChunk, blocks - b0));
        const char* x = a[0] + b0 / 2 * 192;
        __m512 xd[kChunk / 16];
        __mmask16 live[kChunk / 16];
#pragma GCC unroll 4
        for (int j = 0; j < kChunk / 16; ++j) {
            const int left = std::clamp(n - 16 * j, 0, 16);
            live[j] = static_cast<__mmask16>((1u << left) - 1);
            xd[j] = _mm512_mask_i32gather_ps(_mm512_setzero_ps(), live[j], x_index,
                                             x + j * 8 * 192, 1);
        }
        // Zero past the last block (masked lanes), so that a missing second block of a pair
        // has scale 0, as in tile_quant.
        alignas(64) float scales[2][kChunk];
        const auto gather_scales = [&](int r) TANDEM_AVX512W {
#pragma GCC unroll 4
            for (int j = 0; j < kChunk / 16; ++j) {
                if (!live[j]) break;
                const __m512i h =
                    _mm512_mask_i32gather_epi32(_mm512_setzero_si512(), live[j], w_index,
                                                w[r] + (b0 + j * 16) * kBlockBytes, 1);
                _mm512_store_ps(scales[r % 2] + 16 * j,
                                _mm512_mul_ps(_mm512_cvtph_ps(_mm512_cvtepi32_epi16(h)), xd[j]));
            }
        };
        gather_scales(0);
#pragma GCC unroll 1
        for (int r = 0; r < kTileRows; ++r) {
            const char* row = w[r] + b0 * kBlockBytes;
            if (r + 1 < kTileRows) gather_scales(r + 1);
            // Pointers step through the row, the activation's groups and the scales (index
            // arithmetic per block was a third of the loop's instructions).
            const char* grp = x;
            const float* sc = scales[r % 2];
            if constexpr (kIsQ4) {
                __m512 acc = both[r];  // in a register through the loop
                const auto add_pair = [&](const char* p, bool pair) TANDEM_AVX512W {
                    const __m512i dot = _mm512_dpbusd_epi32(_mm512_load_si512(grp + 128),
                                                            load_q4_0(p, 0, pair),
                                                            _mm512_load_si512(grp));
                    // [s_i x 4, s_i+1 x 4, s_i x 4, s_i+1 x 4]: the halves order of QuantGroups
                    const __m512 s =
                        _mm512_mask_mov_ps(_mm512_set1_ps(sc[0]), 0xf0f0, _mm512_set1_ps(sc[1]));
                    acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot), s, acc);
                };
                const char* p = row;
                int i = 0;
#pragma GCC unroll 1  // unrolled twice: no faster
                for (; i + 1 < n; i += 2, p += 2 * kBlockBytes, grp += 192, sc += 2) {
                    _mm_prefetch(p + next_tile, _MM_HINT_T0);
                    add_pair(p, true);
                }
                if (i < n) add_pair(p, false);
                both[r] = acc;
            } else {
                __m256 e = even[r], o = odd[r];  // in registers through the loop
                const auto add_block = [&](const char* p, const char* xb, float s,
                                           __m256& acc) TANDEM_AVX512W {
                    const __m256i q = _mm256_xor_si256(
                        _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 2)),
                        _mm256_set1_epi8(static_cast<char>(0x80)));
                    const __m256i dot = _mm256_dpbusd_epi32(
                        _mm256_load_si256(reinterpret_cast<const __m256i*>(xb + 128)), q,
                        _mm256_load_si256(reinterpret_cast<const __m256i*>(xb)));
                    acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot), _mm256_set1_ps(s), acc);
                };
                const char* p = row;
                int i = 0;
#pragma GCC unroll 1  // unrolled twice, Q8_0 streamed 8% slower from memory (faster in cache)
                for (; i + 1 < n; i += 2, p += 2 * kBlockBytes, grp += 192, sc += 2) {
                    _mm_prefetch(p + next_tile, _MM_HINT_T0);
                    add_block(p, grp, sc[0], e);
                    add_block(p + kBlockBytes, grp + 32, sc[1], o);
                }
                if (i < n) add_block(p, grp, sc[0], e);
                even[r] = e;
                odd[r] = o;
            }
        }
    }
#pragma GCC unroll 4
    for (int r = 0; r < kTileRows; ++r)
        sums[r] = _mm512_reduce_add_ps(
            kIsQ4 ? both[r] : _mm512_insertf32x8(_mm512_castps256_ps512(even[r]), odd[r], 1));
}

// 16 weights of dtype kW from element k of a row, widened to f32.
template <DType kW>
TANDEM_AVX512W inline __m512 load_wide(const char* row, int64_t k) {
    if constexpr (kW == DType::F32) {
        return _mm512_loadu_ps(reinterpret_cast<const float*>(row) + k);
    } else {
        const __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(row + 2 * k));
        if constexpr (kW == DType::F16) return _mm512_cvtph_ps(h);
        return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
    }
}

// f32, f16 and bf16 widened: 16 values of K per step, the last K % 16 one by one.
template <DType kW, int kCols>
TANDEM_AVX512W void tile_wide(const char* const* w, const char* const* a, int64_t K,
                              float* sums) {
    __m512 acc[kTileRows][kCols];
#pragma GCC unroll 4
    for (int r = 0; r < kTileRows; ++r)
#pragma GCC unroll 4
        for (int n = 0; n < kCols; ++n) acc[r][n] = _mm512_setzero_ps();
    int64_t k = 0;
    for (; k + 16 <= K; k += 16) {
        __m512 wv[kTileRows];
#pragma GCC unroll 4
        for (int r = 0; r < kTileRows; ++r) {
            _mm_prefetch(w[r] + k * dtype_size(kW) + kPrefetchAhead, _MM_HINT_T0);
            wv[r] = load_wide<kW>(w[r], k);
        }
#pragma GCC unroll 4
        for (int n = 0; n < kCols; ++n) {
            const __m512 xv = _mm512_loadu_ps(reinterpret_cast<const float*>(a[n]) + k);
#pragma GCC unroll 4
            for (int r = 0; r < kTileRows; ++r) acc[r][n] = _mm512_fmadd_ps(wv[r], xv, acc[r][n]);
        }
    }
#pragma GCC unroll 4
    for (int r = 0; r < kTileRows; ++r)
#pragma GCC unroll 4
        for (int n = 0; n < kCols; ++n) {
            float s = _mm512_reduce_add_ps(acc[r][n]);
            for (int64_t j = k; j < K; ++j)
                s += element_at<kW>(w[r], j) * reinterpret_cast<const float*>(a[n])[j];
            sums[r * kCols + n] = s;
        }
}

// bf16 against x rounded to bf16 (padded with zeros to whole 32s): 32 values of K per
// vdpbf16ps, the last K % 32 of the weights masked.
template <int kCols>
TANDEM_AVX512BF16 void tile_bf16_pairs(const char* const* w, const char* const* a, int64_t K,
                                       float* sums) {
    __m512 acc[kTileRows][kCols];
#pragma GCC unroll 4
    for (int r = 0; r < kTileRows; ++r)
#pragma GCC unroll 4
        for (int n = 0; n < kCols; ++n) acc[r][n] = _mm512_setzero_ps();
    for (int64_t k = 0; k < K; k += 32) {
        const int64_t left = K - k;
        const __mmask32 mask = left >= 32 ? ~__mmask32(0) : (__mmask32(1) << left) - 1;
        __m512bh wv[kTileRows];
#pragma GCC unroll 4
        for (int r = 0; r < kTileRows; ++r) {
            _mm_prefetch(w[r] + 2 * k + kPrefetchAhead, _MM_HINT_T0);
            wv[r] = (__m512bh)_mm512_maskz_loadu_epi16(mask, w[r] + 2 * k);
        }
#pragma GCC unroll 4
        for (int n = 0; n < kCols; ++n) {
            const __m512bh xv = (__m512bh)_mm512_load_si512(a[n] + 2 * k);
#pragma GCC unroll 4
            for (int r = 0; r < kTileRows; ++r) acc[r][n] = _mm512_dpbf16_ps(acc[r][n], xv, wv[r]);
        }
    }
#pragma GCC unroll 4
    for (int r = 0; r < kTileRows; ++r)
#pragma GCC unroll 4
        for (int n = 0; n < kCols; ++n) sums[r * kCols + n] = _mm512_reduce_add_ps(acc[r][n]);
}

// Rows widened to f32 for prefill's panels, 16 values per step.
template <DType kW>
TANDEM_AVX512W void widen(float* out, const char* row, int64_t K) {
    if constexpr (kW == DType::Q8_0 || kW == DType::Q4_0) {
        constexpr int64_t kBlockBytes = kW == DType::Q8_0 ? 34 : 18;
        for (int64_t b = 0; b < K / 32; ++b) {
            const char* p = row + b * kBlockBytes;
            const __m512 d = _mm512_set1_ps(_cvtsh_ss(half_bits(p)));
            __m512i lo, hi;  // values 0-15 and 16-31 as int32
            if constexpr (kW == DType::Q8_0) {
                lo = _mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 2)));
                hi = _mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 18)));
            } else {
                const __m512i q = _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 2)));
                const __m512i eight = _mm512_set1_epi32(8);
                lo = _mm512_sub_epi32(_mm512_and_si512(q, _mm512_set1_epi32(15)), eight);
                hi = _mm512_sub_epi32(_mm512_srli_epi32(q, 4), eight);
            }
            _mm512_storeu_ps(out + 32 * b, _mm512_mul_ps(_mm512_cvtepi32_ps(lo), d));
            _mm512_storeu_ps(out + 32 * b + 16, _mm512_mul_ps(_mm512_cvtepi32_ps(hi), d));
        }
    } else {
        int64_t k = 0;
        for (; k + 16 <= K; k += 16) _mm512_storeu_ps(out + k, load_wide<kW>(row, k));
        for (; k < K; ++k) out[k] = element_at<kW>(row, k);
    }
}

// ---- many activation rows: strips of unsigned weights against the lanes form ---------------

// Strip layout per block b: u8 q[kTileRows][32] (w + offset), then float d[kTileRows], padded to
// a multiple of 32 bytes (aligned stores).
constexpr int64_t kStripBlockBytes = kTileRows * 32 + 32;

template <bool kIsQ4>
TANDEM_AVX512W void strip_quant(char* strip, const char* const* w, int64_t blocks) {
    strip_blocks<kIsQ4, kTileRows, kStripBlockBytes, /*kUnsigned=*/true>(strip, w, blocks);
}

// kTileRows weight rows against kChunks chunks of 16 activation rows: per block, eight
// vpdpbusd per (row, chunk), each a 4-byte weight broadcast against 16 rows' four values,
// started from the rows' corr; then the int32 sums times d_w * d_x into f32 accumulators.
// 12 vector operations per 512 products per (row, chunk), against 4 per 64 for tile_quant.
template <int kChunks>
TANDEM_AVX512W void rows_tile(float* out, int64_t ldo, const char* strip, const char* xa,
                              int64_t chunk_bytes, int64_t blocks, int rows, int64_t n_rows,
                              const float* bias) {
    __m512 acc[kTileRows][kChunks];
#pragma GCC unroll 4
    for (int r = 0; r < kTileRows; ++r)
#pragma GCC unroll 2
        for (int c = 0; c < kChunks; ++c) acc[r][c] = _mm512_setzero_ps();
    for (int64_t b = 0; b < blocks; ++b) {
        const char* sb = strip + b * kStripBlockBytes;
        const char* xb[kChunks];
        __m512i sum[kTileRows][kChunks];
#pragma GCC unroll 2
        for (int c = 0; c < kChunks; ++c) {
            xb[c] = xa + c * chunk_bytes + b * kLaneBlockBytes;
            const __m512i corr = _mm512_load_si512(xb[c] + 576);
#pragma GCC unroll 4
            for (int r = 0; r < kTileRows; ++r) sum[r][c] = corr;
        }
#pragma GCC unroll 8
        for (int j = 0; j < 8; ++j) {
            __m512i xq[kChunks];
#pragma GCC unroll 2
            for (int c = 0; c < kChunks; ++c) xq[c] = _mm512_load_si512(xb[c] + 64 * j);
#pragma GCC unroll 4
            for (int r = 0; r < kTileRows; ++r) {
                int32_t four;
                std::memcpy(&four, sb + 32 * r + 4 * j, 4);
                const __m512i wb = _mm512_set1_epi32(four);
#pragma GCC unroll 2
                for (int c = 0; c < kChunks; ++c)
                    sum[r][c] = _mm512_dpbusd_epi32(sum[r][c], wb, xq[c]);
            }
        }
        const float* wd = reinterpret_cast<const float*>(sb + kTileRows * 32);
#pragma GCC unroll 2
        for (int c = 0; c < kChunks; ++c) {
            const __m512 xd = _mm512_load_ps(reinterpret_cast<const float*>(xb[c] + 512));
#pragma GCC unroll 4
            for (int r = 0; r < kTileRows; ++r)
                acc[r][c] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sum[r][c]),
                                            _mm512_mul_ps(xd, _mm512_set1_ps(wd[r])), acc[r][c]);
        }
    }
    // Lane n of acc[r][c] is out[16 c + n, r]: a scatter down the column, once per call.
    const __m512i down = _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10,
                                                              11, 12, 13, 14, 15),
                                            _mm512_set1_epi32(static_cast<int32_t>(ldo)));
#pragma GCC unroll 2
    for (int c = 0; c < kChunks; ++c) {
        const int64_t left = n_rows - kLaneRows * c;
        if (left <= 0) break;
        const __mmask16 mask = left >= 16 ? __mmask16(0xffff) : __mmask16((1u << left) - 1);
        float* o = out + kLaneRows * c * ldo;
#pragma GCC unroll 4
        for (int r = 0; r < kTileRows; ++r) {
            if (r >= rows) break;
            const __m512 v = bias ? _mm512_add_ps(acc[r][c], _mm512_set1_ps(bias[r])) : acc[r][c];
            _mm512_mask_i32scatter_ps(o + r, mask, down, v, 4);
        }
    }
}

template <bool kIsQ4>
constexpr RowsKernels rows_kernels() {
    // From 8 rows: bench/matmul_weights_bench, gate_up, CPU time per call, Sapphire Rapids, 2
    // threads (decode tiles -> row tiles): Q8_0 at N = 4 0.49 -> 0.63 ms, N = 8 0.71 -> 0.60,
    // N = 16 1.34 -> 0.64; Q4_0 0.32 -> 0.46, 0.60 -> 0.46, 1.15 -> 0.52. At N = 128 the f32
    // panels took 8.4 ms, these tiles 2.9.
    return {kIsQ4 ? 8 : 128, kTileRows, kStripBlockBytes, &strip_quant<kIsQ4>,
            {&rows_tile<1>, &rows_tile<2>}, nullptr, nullptr, /*from_rows=*/8};
}

template <template <int> class Tile>
constexpr DTypeKernels kernels_of(ActivationForm form, QuantGroups groups, WidenFn widen_row,
                                  RowsKernels rows = {}) {
    return {form, groups, 4, {Tile<1>::fn, Tile<2>::fn, Tile<3>::fn, Tile<4>::fn}, widen_row, rows};
}
template <int kCols>
struct Q8Tile {
    static constexpr TileFn fn = kCols == 1 ? &tile_quant_one_row<false> : &tile_quant<false, kCols>;
};
template <int kCols>
struct Q4Tile {
    static constexpr TileFn fn = kCols == 1 ? &tile_quant_one_row<true> : &tile_quant<true, kCols>;
};
template <int kCols>
struct F32Tile {
    static constexpr TileFn fn = &tile_wide<DType::F32, kCols>;
};
template <int kCols>
struct F16Tile {
    static constexpr TileFn fn = &tile_wide<DType::F16, kCols>;
};
template <int kCols>
struct Bf16Tile {
    static constexpr TileFn fn = &tile_wide<DType::BF16, kCols>;
};
template <int kCols>
struct Bf16PairsTile {
    static constexpr TileFn fn = &tile_bf16_pairs<kCols>;
};

constexpr QuantGroups kNoGroups{1, 0};
constexpr WeightKernels kWidened{
    kernels_of<F32Tile>(ActivationForm::f32, kNoGroups, &widen<DType::F32>),
    kernels_of<F16Tile>(ActivationForm::f32, kNoGroups, &widen<DType::F16>),
    kernels_of<Bf16Tile>(ActivationForm::f32, kNoGroups, &widen<DType::BF16>),
    kernels_of<Q8Tile>(ActivationForm::q8, {2, 128}, &widen<DType::Q8_0>, rows_kernels<false>()),
    kernels_of<Q4Tile>(ActivationForm::q8, {2, 8, true}, &widen<DType::Q4_0>, rows_kernels<true>()),
};

}  // namespace

constinit const WeightKernels kAvx512WeightKernels = kWidened;
constinit const WeightKernels kAvx512Bf16WeightKernels{
    kWidened.f32,
    kWidened.f16,
    kernels_of<Bf16PairsTile>(ActivationForm::bf16, kNoGroups, &widen<DType::BF16>),
    kWidened.q8_0,
    kWidened.q4_0,
};

#else

constinit const WeightKernels kAvx512WeightKernels{};
constinit const WeightKernels kAvx512Bf16WeightKernels{};

#endif

}  // namespace tandem::backend::cpu

// The AMX row tiles of matmul_weights (RowsKernels in matmul_weights_kernels.h), for CPUs with
// AMX-INT8 (Sapphire Rapids and later): Q8_0 and Q4_0 weights against 8 activation rows or more.
// One tdpbssd multiplies 16 weight rows by 16 activation rows over a block of 32 (8,192
// products); the block's int32 sums then leave the tile through memory and AVX-512 scales them
// into f32 accumulators (3 vector operations per 16 sums, against the VNNI row tiles' 12 per 512
// products). Whether the CPU and the kernel allow AMX is amx_usable()'s question.
#include <algorithm>
#include <climits>
#include <cstdint>
#include <cstring>

#include "backend/cpu/matmul_weights_kernels.h"
#include "backend/cpu/matmul_weights_strip.h"
#include "core/dtype.h"

#if defined(__x86_64__) && defined(__GNUC__) && defined(__linux__)
#include <cpuid.h>
#include <immintrin.h>
#include <sys/syscall.h>
#include <unistd.h>
#pragma GCC diagnostic ignored "-Wuninitialized"  // GCC 12's AVX-512 headers (see gemm_avx512.cpp)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#define TANDEM_AMX \
    __attribute__((target("amx-tile,amx-int8,avx512f,avx512bw,avx512vl,avx512dq,f16c,fma")))
#define TANDEM_HAVE_AMX_WEIGHTS 1
#endif

namespace tandem::backend::cpu {

#ifdef TANDEM_HAVE_AMX_WEIGHTS

bool amx_usable() {
    static const bool usable = [] {
        unsigned a, b, c, d;
        if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return false;
        const bool tile = d & (1u << 24), int8 = d & (1u << 25);
        if (!tile || !int8) return false;
        // Linux hands out the 8 KB of tile state only on request, once per process:
        // arch_prctl(ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA). Without it the first tile
        // instruction faults.
        constexpr long kReqXcompPerm = 0x1023, kXtileData = 18;
        return syscall(SYS_arch_prctl, kReqXcompPerm, kXtileData) == 0;
    }();
    return usable;
}

namespace {

constexpr int kAmxRows = 16;  // weight rows per strip: one A tile

// Where a strip's A operands and weight scales are. Q8_0's values are the tile's operand as they
// are stored, so a strip of 16 evenly spaced rows points at the weights themselves and holds only
// their scales as f32; Q4_0's nibbles (and the edge of a product, whose rows repeat) are copied
// into the strip, unpacked, beside their scales.
struct AmxStrip {
    const char* q;         // row 0's values of block 0
    int64_t row_stride;    // bytes from one row's values to the next row's
    int64_t block_stride;  // bytes from one block's values to the next block's
    const float* d;        // block 0's 16 scales
    int64_t d_stride;      // bytes from one block's scales to the next block's
};
constexpr int64_t kHeaderBytes = 64;
// A copied block: int8 q[16][32], then float d[16] (strip_blocks' layout).
constexpr int64_t kCopiedBlockBytes = kAmxRows * 32 + kAmxRows * 4;
// Per block at most: a copied block, plus one block's share of the header (64 bytes each).
constexpr int64_t kAmxStripBlockBytes = kCopiedBlockBytes + kHeaderBytes;

// Whether the tile's rows lie at one stride from each other (not so at a product's edge).
bool evenly_spaced(const char* const* w) {
    for (int r = 2; r < kAmxRows; ++r)
        if (w[r] - w[r - 1] != w[1] - w[0]) return false;
    // The gather of the scales takes the offsets of 16 rows as int32.
    return w[1] > w[0] && w[1] - w[0] <= INT32_MAX / kAmxRows;
}

template <bool kIsQ4>
TANDEM_AMX void strip_amx(char* strip, const char* const* w, int64_t blocks) {
    AmxStrip& h = *reinterpret_cast<AmxStrip*>(strip);
    char* body = strip + kHeaderBytes;
    if (kIsQ4 || !evenly_spaced(w)) {
        strip_blocks<kIsQ4, kAmxRows, kCopiedBlockBytes, /*kUnsigned=*/false>(body, w, blocks);
        h = {body, 32, kCopiedBlockBytes, reinterpret_cast<const float*>(body + kAmxRows * 32),
             kCopiedBlockBytes};
        return;
    }
    // Each row's scale of a block: one gather of 16 (the low half of 4 bytes at the block's
    // start), widened from f16.
    const int64_t stride = w[1] - w[0];
    const __m512i rows =
        _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                           _mm512_set1_epi32(static_cast<int32_t>(stride)));
    float* d = reinterpret_cast<float*>(body);
    for (int64_t b = 0; b < blocks; ++b) {
        const __m512i raw = _mm512_i32gather_epi32(rows, w[0] + b * 34, 1);
        _mm512_store_ps(d + 16 * b, _mm512_cvtph_ps(_mm512_cvtepi32_epi16(raw)));
    }
    h = {w[0] + 2, stride, 34, d, 64};
}

// Tile registers: 0, 1, 6 and 7 the int32 sums of four steps in flight, 2/3 and 4/5 two steps'
// factors (weights, activations). GCC's tile intrinsics paste their arguments into the assembly
// text, so the kernels name them by literal numbers.
enum : int { kC0 = 0, kC1 = 1, kA0 = 2, kB0 = 3, kA1 = 4, kB1 = 5, kC2 = 6, kC3 = 7 };

TANDEM_AMX void amx_begin() {
    struct alignas(64) Config {
        uint8_t palette = 1, start_row = 0, reserved[14] = {};
        uint16_t colsb[16] = {};
        uint8_t rows[16] = {};
    } config;
    for (int t : {kC0, kC1, kC2, kC3}) config.colsb[t] = 64, config.rows[t] = 16;  // 16 x 16 int32
    for (int t : {kA0, kA1}) config.colsb[t] = 32, config.rows[t] = 16;  // 16 rows x 32 int8
    for (int t : {kB0, kB1}) config.colsb[t] = 64, config.rows[t] = 8;   // 8 x (16 x 4) int8
    // Not GCC 12's _tile_loadconfig: its asm operand covers only the first 8 bytes of the
    // configuration, so the compiler dropped the stores of the tiles' shapes (SIGILL at the
    // first tile instruction). This operand is the whole of it.
    __asm__ volatile("ldtilecfg %0" : : "m"(config));
}

TANDEM_AMX void amx_end() {
    _tile_release();
}

// acc[o] (lanes: 16 activation rows) += sums[o][n] * d_w[o] * d_x[n] for one block.
TANDEM_AMX inline void scale_into(__m512* acc, const int32_t* sums, const float* wd,
                                  const float* xd_ptr) {
    const __m512 xd = _mm512_load_ps(xd_ptr);
#pragma GCC unroll 16
    for (int o = 0; o < kAmxRows; ++o) {
        const __m512 s = _mm512_cvtepi32_ps(_mm512_load_si512(sums + 16 * o));
        acc[o] = _mm512_fmadd_ps(_mm512_mul_ps(s, xd), _mm512_set1_ps(wd[o]), acc[o]);
    }
}

// a[o] (lane n) becomes a[n] (lane o): a 16 x 16 transpose in four rounds of shuffles.
TANDEM_AMX inline __attribute__((always_inline)) void transpose16(__m512* a) {
    __m512 t[16], u[16];
#pragma GCC unroll 8
    for (int i = 0; i < 16; i += 2) {  // pairs of rows interleaved within 128-bit lanes
        t[i] = _mm512_unpacklo_ps(a[i], a[i + 1]);
        t[i + 1] = _mm512_unpackhi_ps(a[i], a[i + 1]);
    }
    // u[4 g + j], lane L: rows 4 g .. 4 g + 3 of column 4 L + j.
#pragma GCC unroll 4
    for (int g = 0; g < 4; ++g) {
        u[4 * g + 0] = _mm512_shuffle_ps(t[4 * g], t[4 * g + 2], 0x44);
        u[4 * g + 1] = _mm512_shuffle_ps(t[4 * g], t[4 * g + 2], 0xee);
        u[4 * g + 2] = _mm512_shuffle_ps(t[4 * g + 1], t[4 * g + 3], 0x44);
        u[4 * g + 3] = _mm512_shuffle_ps(t[4 * g + 1], t[4 * g + 3], 0xee);
    }
    // Column 4 L + j is lane L of u[j], u[4 + j], u[8 + j], u[12 + j].
#pragma GCC unroll 4
    for (int j = 0; j < 4; ++j) {
        const __m512 low01 = _mm512_shuffle_f32x4(u[j], u[4 + j], 0x44);
        const __m512 high01 = _mm512_shuffle_f32x4(u[j], u[4 + j], 0xee);
        const __m512 low23 = _mm512_shuffle_f32x4(u[8 + j], u[12 + j], 0x44);
        const __m512 high23 = _mm512_shuffle_f32x4(u[8 + j], u[12 + j], 0xee);
        a[j] = _mm512_shuffle_f32x4(low01, low23, 0x88);
        a[4 + j] = _mm512_shuffle_f32x4(low01, low23, 0xdd);
        a[8 + j] = _mm512_shuffle_f32x4(high01, high23, 0x88);
        a[12 + j] = _mm512_shuffle_f32x4(high01, high23, 0xdd);
    }
}

// (c, b) -> the next step: the next block of chunk c, or chunk c + 1's first.
inline void next_step(int64_t& c, int64_t& b, int64_t blocks) {
    if (++b == blocks) b = 0, ++c;
}

// Rows o of `sums` (lane n: activation row n) + bias as `here` rows n of out (lane o). The
// accumulators come through memory so that their registers are free for the transpose.
TANDEM_AMX inline void store_rows(float* out, int64_t ldo, const float* sums, int64_t here,
                                  __mmask16 row_mask, __m512 bias) {
    __m512 a[16];
#pragma GCC unroll 16
    for (int o = 0; o < 16; ++o) a[o] = _mm512_load_ps(sums + 16 * o);
    transpose16(a);
    for (int64_t n = 0; n < here; ++n)
        _mm512_mask_storeu_ps(out + n * ldo, row_mask, _mm512_add_ps(a[n], bias));
}

// One round of the tile pipeline (amx_rows_tile), phase p = i % 4 with its tiles named: the sums
// of step i + 1 leave C tile kS for sums[(p + 1) % 2]; step i + 3 is multiplied into C tile kD
// from the factors in kDA/kDB; step i + 4's factors are loaded into kLA/kLB. Each stage runs
// only for a step that exists.
#define TANDEM_AMX_ROUND(p, kS, kD, kDA, kDB, kLA, kLB)                             \
    do {                                                                            \
        if (i + 1 >= 0 && i + 1 < steps) _tile_stored(kS, sums[((p) + 1) % 2], 64); \
        if (i + 3 >= 0 && i + 3 < steps) {                                          \
            _tile_zero(kD);                                                         \
            _tile_dpbssd(kD, kDA, kDB);                                             \
        }                                                                           \
        if (i + 4 < steps) {                                                        \
            _tile_loadd(kLA, s.q + lb * s.block_stride, s.row_stride);              \
            _tile_loadd(kLB, xa + lc * chunk_bytes + lb * kLaneBlockBytes, 64);     \
            next_step(lc, lb, blocks);                                              \
        }                                                                           \
    } while (0)
// The round of phase i % 4: steps go through C tiles 0, 1, 6, 7 in turn and through the factor
// pairs 2/3 and 4/5 in turn.
#define TANDEM_AMX_ROUND_OF(i)                         \
    do {                                               \
        switch ((i)&3) {                               \
            case 0:                                    \
                TANDEM_AMX_ROUND(0, 1, 7, 4, 5, 2, 3); \
                break;                                 \
            case 1:                                    \
                TANDEM_AMX_ROUND(1, 6, 0, 2, 3, 4, 5); \
                break;                                 \
            case 2:                                    \
                TANDEM_AMX_ROUND(2, 7, 1, 4, 5, 2, 3); \
                break;                                 \
            default:                                   \
                TANDEM_AMX_ROUND(3, 0, 6, 2, 3, 4, 5); \
                break;                                 \
        }                                              \
    } while (0)

// 16 weight rows (a strip) against up to kChunks chunks of 16 activation rows: every (chunk,
// block) step in turn, software-pipelined across chunks so that the tile unit's latencies
// overlap each other and the vector work. In the round that scales step i (its sums, stored in
// the round before, into 16 f32 accumulators whose lanes are the chunk's activation rows), step
// i + 1's sums leave their C tile, step i + 3 is multiplied and step i + 4's factors are loaded.
// A chunk's accumulators are transposed at its last block and stored as rows of out.
template <int kChunks>
TANDEM_AMX void amx_rows_tile(float* out, int64_t ldo, const char* strip, const char* xa,
                              int64_t chunk_bytes, int64_t blocks, int rows, int64_t n_rows,
                              const float* bias) {
    const AmxStrip s = *reinterpret_cast<const AmxStrip*>(strip);
    const int64_t chunks = std::min<int64_t>(kChunks, (n_rows + kLaneRows - 1) / kLaneRows);
    const int64_t steps = chunks * blocks;
    const __mmask16 row_mask = static_cast<__mmask16>((1u << rows) - 1);
    const __m512 bias_v = bias ? _mm512_maskz_loadu_ps(row_mask, bias) : _mm512_setzero_ps();
    alignas(64) int32_t sums[2][kAmxRows * 16];
    __m512 acc[kAmxRows];
#pragma GCC unroll 16
    for (int o = 0; o < kAmxRows; ++o) acc[o] = _mm512_setzero_ps();
    int64_t lc = 0, lb = 0;  // the step whose factors are loaded next: (chunk, block)
    for (int64_t i = -4; i < 0; ++i) TANDEM_AMX_ROUND_OF(i);
    int64_t i = 0;  // the step scaled next
    for (int64_t c = 0; c < chunks; ++c) {
        const char* x = xa + c * chunk_bytes;
        for (int64_t b = 0; b < blocks; ++b, ++i) {
            TANDEM_AMX_ROUND_OF(i);
            scale_into(
                acc, sums[i % 2],
                reinterpret_cast<const float*>(reinterpret_cast<const char*>(s.d) + b * s.d_stride),
                reinterpret_cast<const float*>(x + b * kLaneBlockBytes + 512));
        }
        alignas(64) float done[kAmxRows * 16];
#pragma GCC unroll 16
        for (int o = 0; o < kAmxRows; ++o) {
            _mm512_store_ps(done + 16 * o, acc[o]);
            acc[o] = _mm512_setzero_ps();
        }
        store_rows(out + kLaneRows * c * ldo, ldo, done,
                   std::min<int64_t>(kLaneRows, n_rows - kLaneRows * c), row_mask, bias_v);
    }
}
#undef TANDEM_AMX_ROUND_OF
#undef TANDEM_AMX_ROUND

template <bool kIsQ4>
constexpr RowsKernels amx_rows() {
    // From 6 rows: bench/matmul_weights_bench, weights from memory, Sapphire Rapids, 2 threads,
    // ms per call for qkv / gate_up, Q8_0 (decoding's tiles -> these): N = 4 0.35 / 0.47 ->
    // 0.40 / 0.53, N = 6 0.51 / 0.76 -> 0.41 / 0.52-0.56; Q4_0 N = 6 0.46 / 0.63 -> 0.40 / 0.47.
    return {0,
            kAmxRows,
            kAmxStripBlockBytes,
            &strip_amx<kIsQ4>,
            {&amx_rows_tile<1>, &amx_rows_tile<2>},
            &amx_begin,
            &amx_end,
            /*from_rows=*/6};
}

}  // namespace

constinit const RowsKernels kAmxQ8Rows = amx_rows<false>();
constinit const RowsKernels kAmxQ4Rows = amx_rows<true>();

#else

bool amx_usable() {
    return false;
}
constinit const RowsKernels kAmxQ8Rows{};
constinit const RowsKernels kAmxQ4Rows{};

#endif

}  // namespace tandem::backend::cpu

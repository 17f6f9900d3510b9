// The AMX row tiles of matmul_weights (RowsKernels in matmul_weights_kernels.h), for CPUs with
// AMX-INT8 (Sapphire Rapids and later): Q8_0 and Q4_0 weights against many activation rows. One
// tdpbssd multiplies 16 weight rows by 16 activation rows over a block of 32 (8,192 products);
// the block's int32 sums then leave the tile through memory and AVX-512 scales them into f32
// accumulators. Whether the CPU and the kernel allow AMX is amx_usable()'s question.
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
#define TANDEM_AMX __attribute__((target("amx-tile,amx-int8,avx512f,avx512bw,avx512vl,avx512dq,f16c,fma")))
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
// Strip layout per block b: int8 q[16][32] (the weights as they are, Q4_0's nibbles minus 8),
// then float d[16].
constexpr int64_t kAmxStripBlockBytes = kAmxRows * 32 + kAmxRows * 4;

template <bool kIsQ4>
TANDEM_AMX void strip_amx(char* strip, const char* const* w, int64_t blocks) {
    strip_blocks<kIsQ4, kAmxRows, kAmxStripBlockBytes, /*kUnsigned=*/false>(strip, w, blocks);
}

// Tile registers: 0 and 1 the int32 sums of two blocks in flight, 2/3 and 4/5 their factors
// (weights, activations). GCC's tile intrinsics paste their arguments into the assembly text,
// so the kernels name them by literal numbers.
enum : int { kC0 = 0, kC1 = 1, kA0 = 2, kB0 = 3, kA1 = 4, kB1 = 5 };

TANDEM_AMX void amx_begin() {
    struct alignas(64) Config {
        uint8_t palette = 1, start_row = 0, reserved[14] = {};
        uint16_t colsb[16] = {};
        uint8_t rows[16] = {};
    } config;
    for (int t : {kC0, kC1}) config.colsb[t] = 64, config.rows[t] = 16;   // 16 x 16 int32
    for (int t : {kA0, kA1}) config.colsb[t] = 32, config.rows[t] = 16;   // 16 rows x 32 int8
    for (int t : {kB0, kB1}) config.colsb[t] = 64, config.rows[t] = 8;    // 8 x (16 x 4) int8
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

// The products of block b into C tile `kC` (0 or 1), through A/B tiles 2/3 or 4/5.
#define TANDEM_AMX_ISSUE(kC, kA, kB, b)                                         \
    do {                                                                       \
        _tile_zero(kC);                                                        \
        _tile_loadd(kA, strip + (b) * kAmxStripBlockBytes, 32);                \
        _tile_loadd(kB, x + (b) * kLaneBlockBytes, 64);                        \
        _tile_dpbssd(kC, kA, kB);                                              \
    } while (0)

// 16 weight rows (a strip) against kChunks chunks of 16 activation rows, one chunk at a time,
// two blocks per step in C tiles 0 and 1, pipelined: the products of blocks b + 2 and b + 3 are
// issued before the sums of b and b + 1 are scaled, so that the tile unit and the vector units
// work at the same time.
template <int kChunks>
TANDEM_AMX void amx_rows_tile(float* out, int64_t ldo, const char* strip, const char* xa,
                              int64_t chunk_bytes, int64_t blocks, int rows, int64_t n_rows,
                              const float* bias) {
    alignas(64) int32_t sums[2][kAmxRows * 16];
    const __m512i down = _mm512_mullo_epi32(
        _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
        _mm512_set1_epi32(static_cast<int32_t>(ldo)));
    const auto wd = [&](int64_t b) {
        return reinterpret_cast<const float*>(strip + b * kAmxStripBlockBytes + kAmxRows * 32);
    };
    for (int c = 0; c < kChunks; ++c) {
        const int64_t left = n_rows - kLaneRows * c;
        if (left <= 0) break;
        const char* x = xa + c * chunk_bytes;
        const auto xd = [&](int64_t b) {
            return reinterpret_cast<const float*>(x + b * kLaneBlockBytes + 512);
        };
        __m512 acc[kAmxRows];
#pragma GCC unroll 16
        for (int o = 0; o < kAmxRows; ++o) acc[o] = _mm512_setzero_ps();
        TANDEM_AMX_ISSUE(0, 2, 3, 0);
        if (blocks > 1) TANDEM_AMX_ISSUE(1, 4, 5, 1);
        for (int64_t b = 0; b < blocks; b += 2) {
            _tile_stored(0, sums[0], 64);
            if (b + 1 < blocks) _tile_stored(1, sums[1], 64);
            if (b + 2 < blocks) TANDEM_AMX_ISSUE(0, 2, 3, b + 2);
            if (b + 3 < blocks) TANDEM_AMX_ISSUE(1, 4, 5, b + 3);
            scale_into(acc, sums[0], wd(b), xd(b));
            if (b + 1 < blocks) scale_into(acc, sums[1], wd(b + 1), xd(b + 1));
        }
        // Lane n of acc[o] is out[16 c + n, o]: a scatter down the column, once per chunk.
        const __mmask16 mask = left >= 16 ? __mmask16(0xffff) : __mmask16((1u << left) - 1);
        float* o_base = out + kLaneRows * c * ldo;
#pragma GCC unroll 16
        for (int o = 0; o < kAmxRows; ++o) {
            if (o >= rows) break;
            const __m512 v = bias ? _mm512_add_ps(acc[o], _mm512_set1_ps(bias[o])) : acc[o];
            _mm512_mask_i32scatter_ps(o_base + o, mask, down, v, 4);
        }
    }
}
#undef TANDEM_AMX_ISSUE

template <bool kIsQ4>
constexpr RowsKernels amx_rows() {
    return {0,          kAmxRows,  kAmxStripBlockBytes, &strip_amx<kIsQ4>,
            {&amx_rows_tile<1>, &amx_rows_tile<2>}, &amx_begin, &amx_end};
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

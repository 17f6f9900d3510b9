// What matmul_weights.cpp (the driver: threads, blocking over rows, activation preparation, the
// Conv1D layout) needs from each instruction set's file (matmul_weights_avx512.cpp, _avx2.cpp):
// per weight dtype, the tile of a product and the form its activation rows must take. The tile
// works on kTileRows weight rows and 1..max_cols activation rows and runs along all of K.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "core/dtype.h"

namespace tandem::backend::cpu {

// Weight rows per tile: four streams of weights in flight, so that one activation load serves
// four rows and the hardware prefetchers follow four sequential streams.
constexpr int kTileRows = 4;
// Bytes ahead of a tile's position in each weight row that the tiles prefetch. The hardware
// prefetchers alone left one thread streaming Q8_0/Q4_0 rows at 40-50% of the triad bandwidth
// (the tile reads four rows at once, and does more work per byte than the triad); 4-16 KB ahead
// gave 70-79% (gate_up at N = 1, one thread, Sapphire Rapids, matmul_weights_bench).
constexpr int64_t kPrefetchAhead = 8192;
// Activation rows per tile at most (a file's tile table has entries 1..kMaxTileCols).
constexpr int kMaxTileCols = 4;

// How a row of x must be laid out for a dtype's tile.
enum class ActivationForm {
    f32,   // x itself
    bf16,  // x rounded to bf16, padded with zeros to a multiple of 32 values
    q8,    // 8-bit blocks of 32, in groups (QuantGroups)
};

// The q8 form: per group of `blocks` blocks of 32 (1 on AVX2, 2 on AVX-512), in this order:
//   int8 q[32 * blocks];                 x ~ q * d per block
//   float scale[8 * blocks];             each block's d, repeated over its 8 int32 lanes
//   int32 corr[8 * blocks];              -offset * sum(q) in the block's first lane, 0 elsewhere
// `offset` is what the tile adds to each weight to make it unsigned for the u8 x s8 products
// (128 for Q8_0 on AVX-512, 8 for Q4_0's nibbles, 0 for AVX2's sign trick), so that the integer
// sum of a block, started from corr, is exactly sum(w * q). Missing blocks of the last group are
// zeros (scale 0).
// With `halves` (Q4_0 on AVX-512, two blocks), the 16-byte halves of the two blocks interleave:
// q = [block 0 values 0-15, block 1 values 0-15, block 0 values 16-31, block 1 values 16-31],
// each block's scale in the int32 lanes of its bytes ([d0 x 4, d1 x 4, d0 x 4, d1 x 4]) and its
// corr in lanes 0 and 4: the order in which Q4_0's nibbles come out of one shift of both blocks.
struct QuantGroups {
    int blocks;
    int offset;
    bool halves = false;
    int64_t group_bytes() const { return 96 * blocks; }
};

// sums[r * cols + n] = weight row r . activation row n, over K values. w[r]: the stored row
// (kTileRows of them; a tile at the edge repeats its last row); a[n]: the prepared rows.
using TileFn = void (*)(const char* const* w, const char* const* a, int64_t K, float* sums);

// out [K] = a stored weight row of K values widened to f32 (for prefill's panels).
using WidenFn = void (*)(float* out, const char* row, int64_t K);

// ---- many activation rows (prefill, batches above kDecodeRows) against Q8_0 and Q4_0 ----------
// The activation rows are quantised once per call into the lanes form: per chunk of 16 rows
// (kLaneRows), per block of 32 values, kLaneBlockBytes bytes:
//   int8 q[8][16][4];    q[j][n][i] = row n's value 4 j + i of the block (x ~ q * d)
//   float d[16];         row n's scale
//   int32 corr[16];      -offset * sum(q) of row n's block (RowsKernels::offset)
// Rows past N are zeros. A 32-bit lane then holds four values of one row, and one 4-byte weight
// broadcast against a vector of q multiplies 16 rows at once (VNNI's u8 x s8 dot product), with
// the weights offset to unsigned bytes in a strip (RowsKernels::strip) of kTileRows rows.
constexpr int kLaneRows = 16;
constexpr int64_t kLaneBlockBytes = 640;
// Chunks of 16 rows per call of a RowsTileFn, at most.
constexpr int kMaxLaneChunks = 2;

// Weight rows per strip at most.
constexpr int kMaxStripRows = 16;

// A tile of `tile_rows` stored weight rows (w[r]; the edge repeats its last row) of `blocks`
// blocks in the form its RowsTileFn reads, into `strip` (blocks * strip_block_bytes, 64-aligned).
using StripFn = void (*)(char* strip, const char* const* w, int64_t blocks);
// out[n, r] = weight row r . activation row n (+ bias[r] when bias is not null) for the rows of
// `chunks` chunks of the lanes form from `xa` (`chunk_bytes` apart), r < rows, n < n_rows;
// out's rows are `ldo` floats apart.
using RowsTileFn = void (*)(float* out, int64_t ldo, const char* strip, const char* xa,
                            int64_t chunk_bytes, int64_t blocks, int rows, int64_t n_rows,
                            const float* bias);

struct RowsKernels {
    int offset = 0;                     // what the strip adds to each weight (corr's factor)
    int tile_rows = 0;                  // weight rows per strip
    int64_t strip_block_bytes = 0;      // strip bytes per block of the tile's rows
    StripFn strip = nullptr;            // null: no kernel (prefill takes f32 panels)
    RowsTileFn tile[kMaxLaneChunks] = {};  // tile[chunks - 1]
    void (*begin)() = nullptr;          // per thread before its first tile (AMX: the tile
    void (*end)() = nullptr;            // configuration), and after its last; may be null
    int64_t from_rows = 0;              // activation rows from which these tiles beat decoding's
};

struct DTypeKernels {
    ActivationForm form = ActivationForm::f32;
    QuantGroups groups{1, 0};
    int max_cols = 0;                  // activation rows per tile; 0: no kernel
    TileFn tile[kMaxTileCols] = {};    // tile[cols - 1]
    WidenFn widen = nullptr;
    RowsKernels rows = {};
};

// One file's kernels, by weight dtype.
struct WeightKernels {
    DTypeKernels f32, f16, bf16, q8_0, q4_0;
};
extern const WeightKernels kAvx512WeightKernels;      // empty where the compiler lacks AVX-512
extern const WeightKernels kAvx512Bf16WeightKernels;  // the same but bf16 through AVX512_BF16
extern const WeightKernels kAvx2WeightKernels;
// AMX-INT8's row tiles for Q8_0 and Q4_0 (matmul_weights_amx.cpp; empty without the compiler's
// support), and whether this CPU and kernel run them (asks Linux for the tile state once).
extern const RowsKernels kAmxQ8Rows;
extern const RowsKernels kAmxQ4Rows;
bool amx_usable();

// Value k of a row of f32, f16 or bf16 weights, widened (the tiles' scalar ends of K).
template <DType kW>
inline float element_at(const char* row, int64_t k) {
    if constexpr (kW == DType::F32) return reinterpret_cast<const float*>(row)[k];
    uint16_t h;
    std::memcpy(&h, row + 2 * k, 2);
    if constexpr (kW == DType::F16) return f32_from_f16(h);
    return f32_from_bf16(h);
}

// The 8-bit rounding of one block of 32 values (the q8 form): d = max|x| / 127 and
// q = round-half-even(x * 127 / max|x|), 0 for an all-zero block. Returns sum(q).
inline int quantize_block(const float* x, int8_t* q, float* d) {
    // A compare, not std::fmax: without -ffinite-math-only GCC calls libm's fmaxf through the
    // PLT for each value (quantize_row and fmaxf: 1.8% of a batch-16 decode's samples, now 0.9%).
    // NaN is skipped by both.
    float amax = 0.0f;
#pragma omp simd reduction(max : amax)
    for (int j = 0; j < 32; ++j) {
        const float a = std::fabs(x[j]);
        amax = a > amax ? a : amax;
    }
    *d = amax / 127.0f;
    const float inv = amax > 0.0f ? 127.0f / amax : 0.0f;
    int sum = 0;
    for (int j = 0; j < 32; ++j) {
        // Adding 1.5 * 2^23 rounds to an integer, ties to even (|x * inv| <= 127); it vectorises,
        // where std::nearbyint is a library call.
        const float r = (x[j] * inv + 12582912.0f) - 12582912.0f;
        q[j] = static_cast<int8_t>(r);
        sum += q[j];
    }
    return sum;
}

}  // namespace tandem::backend::cpu

// The driver of matmul_weights.h: which instruction set runs, the activation rows in the form the
// weights' tiles want (matmul_weights_kernels.h), the split of output rows between threads and
// the blocking over activation rows, and GPT-2's Conv1D layout (correct, not fast).
#include "backend/cpu/matmul_weights.h"

#include <omp.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "backend/cpu/blas.h"
#include "backend/cpu/gemm.h"
#include "backend/cpu/kernels.h"
#include "backend/cpu/matmul_weights_kernels.h"
#include "backend/cpu/parallel.h"
#include "core/error.h"
#include "core/quant.h"

namespace tandem::backend::cpu {

const char* weights_isa_name(WeightsIsa isa) {
    switch (isa) {
        case WeightsIsa::amx:
            return "amx";
        case WeightsIsa::avx512_bf16:
            return "avx512_bf16";
        case WeightsIsa::avx512:
            return "avx512";
        case WeightsIsa::avx2:
            return "avx2";
        case WeightsIsa::generic:
            break;
    }
    return "generic";
}

WeightsIsa weights_isa_supported() {
#if defined(__x86_64__) && defined(__GNUC__)
    static const WeightsIsa best = [] {
        const bool avx512 = __builtin_cpu_supports("avx512f") &&
                            __builtin_cpu_supports("avx512bw") &&
                            __builtin_cpu_supports("avx512vl") &&
                            __builtin_cpu_supports("avx512dq") &&
                            __builtin_cpu_supports("avx512vnni") && kAvx512WeightKernels.q8_0.max_cols;
        if (avx512 && __builtin_cpu_supports("avx512bf16"))
            return amx_usable() && kAmxQ8Rows.strip ? WeightsIsa::amx : WeightsIsa::avx512_bf16;
        if (avx512) return WeightsIsa::avx512;
        // F16C has no __builtin_cpu_supports name in GCC 12; every CPU with AVX2 and FMA has it.
        if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
            kAvx2WeightKernels.q8_0.max_cols)
            return WeightsIsa::avx2;
        return WeightsIsa::generic;
    }();
    return best;
#else
    return WeightsIsa::generic;
#endif
}

bool weights_isa_runs(WeightsIsa isa) {
    return static_cast<int>(isa) <= static_cast<int>(weights_isa_supported());
}

WeightsIsa weights_isa_choice(const char* value, WeightsIsa supported) {
    const std::string choice = value ? value : "auto";
    if (choice == "auto") return supported;
    for (WeightsIsa isa : {WeightsIsa::generic, WeightsIsa::avx2, WeightsIsa::avx512,
                           WeightsIsa::avx512_bf16, WeightsIsa::amx}) {
        if (choice != weights_isa_name(isa)) continue;
        if (static_cast<int>(isa) > static_cast<int>(supported))
            throw Error("TANDEM_CPU_ISA=", choice, ": this CPU runs at most ",
                        weights_isa_name(supported), " (use auto, or a path at or below it)");
        return isa;
    }
    throw Error("TANDEM_CPU_ISA=", choice,
                ": expected auto, generic, avx2, avx512, avx512_bf16 or amx");
}

WeightsIsa weights_isa_chosen() {
    static const WeightsIsa chosen =
        weights_isa_choice(std::getenv("TANDEM_CPU_ISA"), weights_isa_supported());
    return chosen;
}

namespace {

// ---- the portable path: each weight row widened to f32, then plain dot products ---------------

template <DType kW, int kCols>
void tile_generic(const char* const* w, const char* const* a, int64_t K, float* sums) {
    thread_local std::vector<float> row;
    row.resize(K);
    for (int r = 0; r < kTileRows; ++r) {
        convert_values(row.data(), DType::F32, w[r], kW, K);
        for (int n = 0; n < kCols; ++n) {
            const float* x = reinterpret_cast<const float*>(a[n]);
            float s = 0.0f;
            for (int64_t k = 0; k < K; ++k) s += row[k] * x[k];
            sums[r * kCols + n] = s;
        }
    }
}
template <DType kW>
void widen_generic(float* out, const char* row, int64_t K) {
    convert_values(out, DType::F32, row, kW, K);
}
template <DType kW>
constexpr DTypeKernels generic_kernels() {
    return {ActivationForm::f32,
            {1, 0},
            kMaxTileCols,
            {&tile_generic<kW, 1>, &tile_generic<kW, 2>, &tile_generic<kW, 3>,
             &tile_generic<kW, 4>},
            &widen_generic<kW>,
            {}};
}
constexpr WeightKernels kGenericWeightKernels{
    generic_kernels<DType::F32>(), generic_kernels<DType::F16>(), generic_kernels<DType::BF16>(),
    generic_kernels<DType::Q8_0>(), generic_kernels<DType::Q4_0>()};

// avx512_bf16's kernels with AMX's row tiles for Q8_0 and Q4_0.
DTypeKernels with_amx_rows(DTypeKernels k, const RowsKernels& rows) {
    k.rows = rows;
    return k;
}

const DTypeKernels& kernels_for(WeightsIsa isa, DType dtype) {
    if (isa == WeightsIsa::amx && (dtype == DType::Q8_0 || dtype == DType::Q4_0)) {
        static const DTypeKernels q8 = with_amx_rows(kAvx512Bf16WeightKernels.q8_0, kAmxQ8Rows);
        static const DTypeKernels q4 = with_amx_rows(kAvx512Bf16WeightKernels.q4_0, kAmxQ4Rows);
        return dtype == DType::Q8_0 ? q8 : q4;
    }
    const WeightKernels& k = isa == WeightsIsa::avx512_bf16 || isa == WeightsIsa::amx
                                 ? kAvx512Bf16WeightKernels
                             : isa == WeightsIsa::avx512    ? kAvx512WeightKernels
                             : isa == WeightsIsa::avx2      ? kAvx2WeightKernels
                                                            : kGenericWeightKernels;
    switch (dtype) {
        case DType::F16:
            return k.f16;
        case DType::BF16:
            return k.bf16;
        case DType::Q8_0:
            return k.q8_0;
        case DType::Q4_0:
            return k.q4_0;
        default:
            return k.f32;
    }
}

// ---- activation rows in a tile's form -------------------------------------------------------

// Bytes of one prepared row of K values (a multiple of 64, so that every row is aligned).
int64_t prepared_row_bytes(const DTypeKernels& k, int64_t K) {
    if (k.form == ActivationForm::bf16) return ceil_div(K, 32) * 64;
    const int64_t groups = ceil_div(K / 32, k.groups.blocks);
    return ceil_div(groups * k.groups.group_bytes(), 64) * 64;
}

// One row of x [K] in the q8 form of `g` (matmul_weights_kernels.h).
void quantize_row(const float* x, int64_t K, QuantGroups g, char* out) {
    const int64_t blocks = K / 32, groups = ceil_div(blocks, g.blocks);
    std::memset(out, 0, groups * g.group_bytes());
    for (int64_t b = 0; b < blocks; ++b) {
        char* grp = out + (b / g.blocks) * g.group_bytes();
        const int i = static_cast<int>(b % g.blocks);
        int8_t q[32];
        float d;
        const int sum = quantize_block(x + b * 32, q, &d);
        int8_t* qs = reinterpret_cast<int8_t*>(grp);
        float* scale = reinterpret_cast<float*>(grp + 32 * g.blocks);
        int32_t* corr = reinterpret_cast<int32_t*>(grp + 64 * g.blocks);
        if (g.halves) {  // block i's halves at bytes 16 i and 32 + 16 i (QuantGroups)
            std::copy(q, q + 16, qs + 16 * i);
            std::copy(q + 16, q + 32, qs + 32 + 16 * i);
            std::fill(scale + 4 * i, scale + 4 * i + 4, d);
            std::fill(scale + 8 + 4 * i, scale + 8 + 4 * i + 4, d);
            corr[4 * i] = -g.offset * sum;
        } else {
            std::copy(q, q + 32, qs + 32 * i);
            std::fill(scale + 8 * i, scale + 8 * i + 8, d);
            corr[8 * i] = -g.offset * sum;
        }
    }
}

void prepare_row(const DTypeKernels& k, const float* x, int64_t K, char* out) {
    if (k.form == ActivationForm::q8) {
        quantize_row(x, K, k.groups, out);
    } else {  // bf16
        uint16_t* h = reinterpret_cast<uint16_t*>(out);
        for (int64_t i = 0; i < K; ++i) h[i] = bf16_from_f32(x[i]);
        std::fill(h + K, h + ceil_div(K, 32) * 32, uint16_t(0));
    }
}

// A buffer per calling thread, kept between calls (decoding calls this hundreds of times per
// token): `slot` 0 holds prepared activation rows, 1 prefill's weight panels or a thread's strip.
char* thread_buffer(int slot, int64_t bytes) {
    struct Buffer {
        char* data = nullptr;
        int64_t bytes = 0;
        ~Buffer() { std::free(data); }
    };
    thread_local Buffer buffers[2];
    Buffer& buffer = buffers[slot];
    if (buffer.bytes < bytes) {
        std::free(buffer.data);
        buffer.bytes = ceil_div(bytes, 64) * 64;
        buffer.data = static_cast<char*>(std::aligned_alloc(64, buffer.bytes));
    }
    return buffer.data;
}

// Up to this many activation rows (decoding) the tiles run with the whole batch going past each
// tile of weights, so that every weight is read from memory once; above it (prefill), panels of
// weight rows are widened to f32 and multiplied by the f32 GEMM. The tiles do 4 vector
// operations per 64 (or 16) products, the GEMM's FMA 1 per 16: with many rows per weight, the
// widening is paid once for all of them and the product runs at the f32 GEMM's rate (measured
// with bench/matmul_weights_bench at N = 128: the tiles reached 30-60% of it, the panels ~90%).
constexpr int64_t kDecodeRows = 16;
constexpr int64_t kPrefillRows = 64;  // tiles' blocks of activation rows, where they run above 16
// Weight rows per panel: 512 x K floats (2-6 MB at K = 1024-3072) stay in L2/L3 for the GEMM's
// packing, and each panel's product is large enough for both threads.
constexpr int64_t kPanelRows = 512;

// out [N, O] = x [N, K] W^T + bias for W [O, K] in `dtype`, through f32 panels of W's rows.
void product_panels(const DTypeKernels& k, float* out, const float* x, const char* w, DType dtype,
                    const float* bias, int64_t N, int64_t O, int64_t K) {
    const size_t w_row = dtype_bytes(dtype, K);
    float* panel = reinterpret_cast<float*>(thread_buffer(1, std::min(O, kPanelRows) * K * 4));
    float beta = 0.0f;
    if (bias) {  // the GEMM adds to the bias with beta = 1
#pragma omp parallel for schedule(static)
        for (int64_t n = 0; n < N; ++n) std::copy(bias, bias + O, out + n * O);
        beta = 1.0f;
    }
    const GemmKernel gemm = gemm_kernel_chosen();
    for (int64_t o0 = 0; o0 < O; o0 += kPanelRows) {
        const int64_t rows = std::min(kPanelRows, O - o0);
#pragma omp parallel for schedule(static)
        for (int64_t r = 0; r < rows; ++r) k.widen(panel + r * K, w + (o0 + r) * w_row, K);
        if (gemm != GemmKernel::openblas)
            own_gemm(gemm, false, true, N, rows, K, x, K, panel, K, beta, out + o0, O);
        else
            sgemm(false, true, N, rows, K, 1.0f, x, K, panel, K, beta, out + o0, O);
    }
}

// Row x [K] as lane `lane` of a chunk of the lanes form (matmul_weights_kernels.h).
void quantize_lanes(const float* x, int64_t K, int offset, char* chunk, int lane) {
    for (int64_t b = 0; b < K / 32; ++b) {
        char* block = chunk + b * kLaneBlockBytes;
        int8_t q[32];
        float d;
        const int sum = quantize_block(x + b * 32, q, &d);
        for (int j = 0; j < 8; ++j) std::memcpy(block + 64 * j + 4 * lane, q + 4 * j, 4);
        reinterpret_cast<float*>(block + 512)[lane] = d;
        reinterpret_cast<int32_t*>(block + 576)[lane] = -offset * sum;
    }
}

// out [N, O] = x [N, K] W^T + bias for W [O, K] in Q8_0 or Q4_0 and many rows of x, through
// integer tiles (RowsKernels): x is quantised once, each tile of weight rows is turned into a
// strip once per pass and meets every chunk of 16 activation rows while it sits in L1.
void product_rows(const DTypeKernels& k, float* out, const float* x, const char* w, DType dtype,
                  const float* bias, int64_t N, int64_t O, int64_t K) {
    const RowsKernels& rk = k.rows;
    const int64_t blocks = K / 32, chunks = ceil_div(N, kLaneRows);
    const int64_t chunk_bytes = blocks * kLaneBlockBytes;
    const size_t w_row = dtype_bytes(dtype, K);
    const int64_t tiles = ceil_div(O, rk.tile_rows);
    char* lanes = thread_buffer(0, chunks * chunk_bytes);
    // Chunks per pass over the weights: their lanes form (read once per tile) stays within about
    // 1 MB, in L2; a long prefill reads the weights once per pass.
    const int64_t pass_chunks = std::max<int64_t>(
        kMaxLaneChunks, (int64_t(1) << 20) / chunk_bytes / kMaxLaneChunks * kMaxLaneChunks);
#pragma omp parallel
    {
#pragma omp for schedule(static)
        for (int64_t c = 0; c < chunks; ++c) {
            char* chunk = lanes + c * chunk_bytes;
            const int64_t n0 = c * kLaneRows, here = std::min<int64_t>(kLaneRows, N - n0);
            if (here < kLaneRows) std::memset(chunk, 0, chunk_bytes);  // rows past N are zeros
            for (int64_t i = 0; i < here; ++i)
                quantize_lanes(x + (n0 + i) * K, K, rk.offset, chunk, static_cast<int>(i));
        }
        // Each thread owns whole tiles of output rows, as in product_out_in.
        const Range mine = part_of(tiles, omp_get_num_threads(), omp_get_thread_num());
        char* strip = thread_buffer(1, blocks * rk.strip_block_bytes);
        if (rk.begin && mine.begin < mine.end) rk.begin();
        for (int64_t p0 = 0; p0 < chunks; p0 += pass_chunks) {
            const int64_t p1 = std::min(chunks, p0 + pass_chunks);
            for (int64_t t = mine.begin; t < mine.end; ++t) {
                const int64_t o0 = t * rk.tile_rows;
                const int rows = static_cast<int>(std::min<int64_t>(rk.tile_rows, O - o0));
                const char* w_rows[kMaxStripRows];
                for (int r = 0; r < rk.tile_rows; ++r)  // the edge repeats its last row
                    w_rows[r] = w + (o0 + std::min(r, rows - 1)) * w_row;
                rk.strip(strip, w_rows, blocks);
                for (int64_t c = p0; c < p1; c += kMaxLaneChunks) {
                    const int64_t n = std::min<int64_t>(kMaxLaneChunks, p1 - c);
                    rk.tile[n - 1](out + c * kLaneRows * O + o0, O, strip,
                                   lanes + c * chunk_bytes, chunk_bytes, blocks, rows,
                                   N - c * kLaneRows, bias ? bias + o0 : nullptr);
                }
            }
        }
        if (rk.end && mine.begin < mine.end) rk.end();
    }
}

// out [N, O] = x [N, K] W^T + bias for W [O, K] stored in `dtype`.
void product_out_in(const DTypeKernels& k, float* out, const float* x, const char* w, DType dtype,
                    const float* bias, int64_t N, int64_t O, int64_t K) {
    const size_t w_row = dtype_bytes(dtype, K);
    const bool is_prepared = k.form != ActivationForm::f32;
    const int64_t a_row = is_prepared ? prepared_row_bytes(k, K) : K * 4;
    char* prepared = is_prepared ? thread_buffer(0, N * a_row) : nullptr;
    const char* a_base = is_prepared ? prepared : reinterpret_cast<const char*>(x);
    const int64_t tiles = ceil_div(O, kTileRows);
    const int64_t n_block = N <= kDecodeRows ? N : kPrefillRows;
    // One activation row (batch-1 decoding) is prepared by the calling thread before the team
    // starts: a barrier between preparing and multiplying costs more than the work.
    const bool prepare_alone = is_prepared && !worth_threads(N * K);
    for (int64_t n = 0; prepare_alone && n < N; ++n)
        prepare_row(k, x + n * K, K, prepared + n * a_row);
#pragma omp parallel
    {
        if (is_prepared && !prepare_alone) {
#pragma omp for schedule(static)
            for (int64_t n = 0; n < N; ++n) prepare_row(k, x + n * K, K, prepared + n * a_row);
        }
        // Each thread owns whole tiles of output rows: no sharing, every weight read by one.
        const Range mine = part_of(tiles, omp_get_num_threads(), omp_get_thread_num());
        float sums[kTileRows * kMaxTileCols];
        for (int64_t n0 = 0; n0 < N; n0 += n_block) {
            const int64_t n1 = std::min(N, n0 + n_block);
            for (int64_t t = mine.begin; t < mine.end; ++t) {
                const int64_t o0 = t * kTileRows;
                const int rows = static_cast<int>(std::min<int64_t>(kTileRows, O - o0));
                const char* w_rows[kTileRows];
                for (int r = 0; r < kTileRows; ++r)  // the edge repeats its last row
                    w_rows[r] = w + (o0 + std::min(r, rows - 1)) * w_row;
                for (int64_t nn = n0; nn < n1; nn += k.max_cols) {
                    const int cols = static_cast<int>(std::min<int64_t>(k.max_cols, n1 - nn));
                    const char* a_rows[kMaxTileCols];
                    for (int c = 0; c < cols; ++c) a_rows[c] = a_base + (nn + c) * a_row;
                    k.tile[cols - 1](w_rows, a_rows, K, sums);
                    for (int r = 0; r < rows; ++r)
                        for (int c = 0; c < cols; ++c)
                            out[(nn + c) * O + o0 + r] =
                                sums[r * cols + c] + (bias ? bias[o0 + r] : 0.0f);
                }
            }
        }
    }
}

// out [N, O] = x [N, K] W + bias for W [K, O] stored in `dtype` (GPT-2's Conv1D): each thread
// owns a slice of whole blocks of columns and, input by input, widens its slice of W's row k to
// f32 and adds x[n, k] times it to every out row.
void product_in_out(float* out, const float* x, const char* w, DType dtype, const float* bias,
                    int64_t N, int64_t O, int64_t K) {
    const int64_t unit = dtype_block_values(dtype);  // slices of whole blocks
    const int64_t units = O / unit;
    const size_t w_row = dtype_bytes(dtype, O);
#pragma omp parallel
    {
        const Range mine = part_of(units, omp_get_num_threads(), omp_get_thread_num());
        const int64_t o0 = mine.begin * unit, width = (mine.end - mine.begin) * unit;
        std::vector<float> row(width);
        for (int64_t n = 0; n < N; ++n)
            for (int64_t o = 0; o < width; ++o) out[n * O + o0 + o] = bias ? bias[o0 + o] : 0.0f;
        if (width > 0)
            for (int64_t kk = 0; kk < K; ++kk) {
                convert_values(row.data(), DType::F32, w + kk * w_row + dtype_bytes(dtype, o0),
                               dtype, width);
                for (int64_t n = 0; n < N; ++n) {
                    const float xv = x[n * K + kk];
                    float* o = out + n * O + o0;
                    for (int64_t j = 0; j < width; ++j) o[j] += xv * row[j];
                }
            }
    }
}

}  // namespace

void matmul_weights(WeightsIsa isa, Tensor out, Tensor x, Tensor w, Tensor bias,
                    bool w_is_in_out) {
    const int64_t N = out.rows(), O = out.cols(), K = x.cols();
    const float* b = bias.empty() ? nullptr : bias.as<float>();
    if (N == 0) return;
    if (w.dtype == DType::F32 && (w_is_in_out || N > kDecodeRows)) {
        // f32 weights as the training product has them: its blocked kernel beats these tiles
        // when the activation rows are many, and it handles the [K, O] layout fast.
        matmul(out.view({N, O}), x.view({N, K}), w, bias, false, /*trans_b=*/!w_is_in_out, false);
        return;
    }
    if (w_is_in_out) {
        product_in_out(out.as<float>(), x.as<float>(), w.as<char>(), w.dtype, b, N, O, K);
        return;
    }
    const DTypeKernels& k = kernels_for(isa, w.dtype);
    if (k.rows.strip && N >= k.rows.from_rows)
        product_rows(k, out.as<float>(), x.as<float>(), w.as<char>(), w.dtype, b, N, O, K);
    else if (N > kDecodeRows)
        product_panels(k, out.as<float>(), x.as<float>(), w.as<char>(), w.dtype, b, N, O, K);
    else
        product_out_in(k, out.as<float>(), x.as<float>(), w.as<char>(), w.dtype, b, N, O, K);
}

void round_activations(WeightsIsa isa, DType weight_dtype, int64_t rows, float* x, int64_t n) {
    const DTypeKernels& k = kernels_for(isa, weight_dtype);
    // The integer row tiles quantise x as decoding's q8 form does; prefill's f32 panels take x
    // as it is.
    const bool row_tiles = k.rows.strip && rows >= k.rows.from_rows;
    if (!row_tiles && rows > kDecodeRows) return;
    if (!row_tiles && k.form == ActivationForm::bf16) {
        for (int64_t i = 0; i < n; ++i) x[i] = f32_from_bf16(bf16_from_f32(x[i]));
    } else if (row_tiles || k.form == ActivationForm::q8) {
        int8_t q[32];
        float d;
        for (int64_t b = 0; b < n; b += 32) {
            quantize_block(x + b, q, &d);
            for (int j = 0; j < 32; ++j) x[b + j] = q[j] * d;
        }
    }
}

}  // namespace tandem::backend::cpu

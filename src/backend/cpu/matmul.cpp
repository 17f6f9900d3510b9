// The cpu matrix products: tandem's own product (gemm.h) for the large ones where the CPU runs
// one of its kernels, OpenBLAS sgemm (blas.h) for the rest (transposes read in place, the bias by
// initialising the output rows and beta = 1), matmul_weights' streaming tiles for decoding's few
// rows against transposed weights, and the bias gradient as column sums.
#include <algorithm>

#include "backend/cpu/blas.h"
#include "backend/cpu/gemm.h"
#include "backend/cpu/kernels.h"
#include "backend/cpu/matmul_weights.h"
#include "backend/cpu/parallel.h"
#include "backend/cpu/simd.h"

namespace tandem::backend::cpu {

namespace {

// Below this many multiply-adds per product, a batch runs one product per thread (each sgemm
// single-threaded inside the parallel region) instead of one multi-threaded sgemm after another.
constexpr int64_t kSmallProduct = int64_t(1) << 21;

// Up to this many rows of A, a product with B transposed (decoding's x W^T) streams B through
// matmul_weights (the rows of its decode tiles). bench/matmul_weights_bench --sgemm, gate_up, CPU
// ms, tiles / OpenBLAS: 1 row 1.13-1.21 / 2.64-3.79, 4 rows 1.39 / 3.09, 16 rows 3.37 / 3.82.
constexpr int64_t kStreamRows = 16;

// out = bias, or out += bias when accumulating: the start that sgemm adds to with beta = 1.
TANDEM_CPU_CLONES void bias_row(float* out, const float* bias, int64_t N, bool accumulate) {
    if (accumulate) {
        for (int64_t n = 0; n < N; ++n) out[n] += bias[n];
    } else {
        for (int64_t n = 0; n < N; ++n) out[n] = bias[n];
    }
}

// acc[n] += row[n] for a block of columns, in double.
TANDEM_CPU_CLONES void add_row(double* acc, const float* row, int64_t N) {
    for (int64_t n = 0; n < N; ++n) acc[n] += row[n];
}

// Whether tandem's own product should run out [M, N] = op(a) @ op(b) + beta * out: when the
// CPU runs one of its kernels and the product does enough arithmetic per byte of its operands
// (as f32, C twice when accumulated). Measured (docs/PERFORMANCE.md: bench/gemm_bench and
// training steps), with OpenBLAS's kernels for the same CPU as the alternative:
// - A as stored (forward and input-gradient products): the AVX-512 kernel (Zen 5) was 5-20%
//   faster from 73 FLOPs per byte up (llama-15m at 2048 tokens, gpt2-124m at 256 and 4096); the
//   AVX2 kernel (Zen 3) 4-23% faster at llama-15m's 95-125, 0-8% slower to 10% faster at
//   gpt2-124m's 73-96 with 256 tokens;
// - A transposed (weight gradients, dW += dY^T X, K = tokens): AVX-512 was up to 10% slower at
//   53-55 FLOPs per byte (gpt2-124m, 256 tokens), level at 99-112 (llama-15m), 5-12% faster at
//   236 (gpt2-124m, 4096 tokens); AVX2 level at 53-55 and 13-18% faster at 99.
bool own_product_pays(int64_t M, int64_t N, int64_t K, bool trans_a, float beta) {
    const GemmKernel kernel = gemm_kernel_chosen();
    if (kernel == GemmKernel::openblas) return false;
    if (M < 32 || N < 32) return false;  // decoding a few tokens: OpenBLAS's gemv paths
    const double min_flops_per_byte = !trans_a ? 70 : kernel == GemmKernel::avx512 ? 150 : 90;
    const double flops = 2.0 * M * N * K;
    const double bytes = 4.0 * (M * K + K * N + M * N * (beta != 0.0f ? 2 : 1));
    return flops >= min_flops_per_byte * bytes;
}

// One product of row-major matrices: out [M, N] = op(a) @ op(b) + beta * out. `alone`: not
// inside a parallel region, so that tandem's product may use every thread.
void gemm(float* out, const float* a, const float* b, int64_t M, int64_t N, int64_t K, bool trans_a,
          bool trans_b, float beta, bool alone) {
    const int64_t lda = trans_a ? M : K, ldb = trans_b ? K : N;
    if (alone && own_product_pays(M, N, K, trans_a, beta))
        own_gemm(gemm_kernel_chosen(), trans_a, trans_b, M, N, K, a, lda, b, ldb, beta, out, N);
    else
        sgemm(trans_a, trans_b, M, N, K, 1.0f, a, lda, b, ldb, beta, out, N);
}

}  // namespace

void matmul(Tensor out, Tensor a, Tensor b, Tensor bias, bool trans_a, bool trans_b,
            bool accumulate) {
    const bool batched = out.ndim() == 3;
    const int64_t S = batched ? out.size(0) : 1, M = out.size(-2), N = out.size(-1);
    const int64_t K = trans_a ? a.size(-2) : a.size(-1);
    if (!batched && !trans_a && trans_b && !accumulate && M <= kStreamRows && K > 0 &&
        weights_isa_chosen() != WeightsIsa::generic) {
        // Decoding against f32 weights [N, K]: the weights stream once through matmul_weights'
        // vector tiles (prefetched, each thread on its own rows), where OpenBLAS's small-M path
        // read them at under half the triad bandwidth (F32 decode 4.5 tok/s, 44% of the floor).
        matmul_weights(weights_isa_chosen(), out, a, b, bias, /*w_is_in_out=*/false);
        return;
    }
    float* o = out.as<float>();
    float beta = accumulate ? 1.0f : 0.0f;
    if (!bias.empty()) {
#pragma omp parallel for schedule(static)
        for (int64_t m = 0; m < M; ++m) bias_row(o + m * N, bias.as<float>(), N, accumulate);
        beta = 1.0f;
    }
    if (K == 0) {  // an empty sum: sgemm rejects the leading dimensions, so do it here
        if (beta == 0.0f) std::fill(o, o + S * M * N, 0.0f);
        return;
    }
    const float *A = a.as<float>(), *B = b.as<float>();
    if (S > 1 && M * N * K < kSmallProduct) {
#pragma omp parallel for schedule(static)
        for (int64_t s = 0; s < S; ++s)
            gemm(o + s * M * N, A + s * M * K, B + s * K * N, M, N, K, trans_a, trans_b, beta,
                 /*alone=*/false);
    } else {
        for (int64_t s = 0; s < S; ++s)
            gemm(o + s * M * N, A + s * M * K, B + s * K * N, M, N, K, trans_a, trans_b, beta,
                 /*alone=*/true);
    }
}

void bias_backward(Tensor dbias, Tensor dout) {
    // Each task owns a block of columns and sums them over all rows in row order, in double:
    // one parallel region, no partial buffers, and the same sums however many threads run.
    // A block of 128 doubles stays in L1 while the rows stream past.
    constexpr int64_t kColumns = 128;
    const int64_t M = dout.rows(), N = dout.cols();
    const float* d = dout.as<float>();
    float* g = dbias.as<float>();
#pragma omp parallel for schedule(static)
    for (int64_t n0 = 0; n0 < N; n0 += kColumns) {
        const int64_t width = std::min(kColumns, N - n0);
        double acc[kColumns] = {};
        for (int64_t m = 0; m < M; ++m) add_row(acc, d + m * N + n0, width);
        for (int64_t n = 0; n < width; ++n) g[n0 + n] = static_cast<float>(g[n0 + n] + acc[n]);
    }
}

}  // namespace tandem::backend::cpu

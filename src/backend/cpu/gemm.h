// tandem's own f32 matrix product for x86-64 CPUs: packed panels and a register tile sized for
// the CPU's vectors, both cores working on one product. Two kernels, chosen at run time: one for
// AVX-512 (an 8 x 48 tile) and one for AVX2 with FMA (6 x 16). Used by the cpu backend for the
// large products of a training step, where it runs closer to the FMA peak than OpenBLAS
// (docs/PERFORMANCE.md), and, through pack_b and gemm_packed_b, for attention's blocks on AVX2;
// everything else, and every CPU with neither, keeps OpenBLAS.
#pragma once

#include <cstdint>

namespace tandem::backend::cpu {

enum class GemmKernel { openblas, avx2, avx512 };

// "OpenBLAS", "AVX2" or "AVX-512".
const char* gemm_kernel_name(GemmKernel kernel);

// The best of tandem's kernels this CPU runs (checked once at run time): avx512 with AVX-512 F,
// VL and DQ, avx2 with AVX2 and FMA, else openblas.
GemmKernel gemm_kernel_supported();

// Whether this CPU runs `kernel` (openblas always).
bool gemm_kernel_runs(GemmKernel kernel);

// The kernel of the cpu backend's large products, from TANDEM_CPU_GEMM (read once): see
// gemm_kernel_choice.
GemmKernel gemm_kernel_chosen();

// The kernel for a value of TANDEM_CPU_GEMM (null when unset) on a CPU whose best kernel is
// `supported`: auto (the default) and tandem give `supported`, openblas gives openblas; tandem
// where `supported` is openblas, or any other value, throws Error naming the value.
GemmKernel gemm_kernel_choice(const char* value, GemmKernel supported);

// C [M, N] = op(A) op(B) + beta C for row-major matrices, beta 0 or 1 (beta 0 never reads C),
// on `kernel` (avx2 or avx512, one this CPU runs). op(A) is [M, K]: A itself with row stride
// lda, or, with trans_a, A [K, M] read transposed; likewise op(B) [K, N]. Each element of C sums
// its K products in the same order whatever the number of threads, so results do not depend on
// OMP_NUM_THREADS. Call it outside any parallel region: it opens its own.
void own_gemm(GemmKernel kernel, bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K,
              const float* a, int64_t lda, const float* b, int64_t ldb, float beta, float* c,
              int64_t ldc);

// Products against an operand packed once and used many times, on the calling thread alone (for
// kernels that run inside their own parallel region: attention packs a head's keys and values
// once for all its blocks of queries). `kernel` is avx2 or avx512, one this CPU runs.
struct PackedB {
    const float* panels;  // pack_b's output
    int64_t K, N;         // op(B) as packed
};

// Floats that pack_b writes for op(B) [K, N] (at least K x N; the buffer 64-byte aligned).
int64_t packed_b_floats(GemmKernel kernel, int64_t K, int64_t N);

// Packs op(B) [K, N]: B itself with row stride ldb, or, with trans_b, B [N, K] read transposed.
void pack_b(GemmKernel kernel, bool trans_b, int64_t K, int64_t N, const float* b, int64_t ldb,
            float* packed);

// C [M, N] = op(A) op(B) + beta C as own_gemm, with op(B) the leading [K, N] block of `b`
// (K <= b.K, N <= b.N: the first keys of a head, say), on the calling thread.
void gemm_packed_b(GemmKernel kernel, bool trans_a, int64_t M, int64_t N, int64_t K,
                   const float* a, int64_t lda, PackedB b, float beta, float* c, int64_t ldc);

}  // namespace tandem::backend::cpu

// tandem's own f32 matrix product for CPUs with AVX-512: packed panels and an 8 x 48 register
// tile, both cores working on one product. Used by the cpu backend for the large products of a
// training step, where it runs closer to the FMA peak than OpenBLAS (docs/PERFORMANCE.md);
// everything else, and every CPU without AVX-512, keeps OpenBLAS.
#pragma once

#include <cstdint>

namespace tandem::backend::cpu {

// Whether this CPU can run gemm_avx512 (AVX-512 F, VL and DQ, checked once at run time).
bool gemm_avx512_supported();

// Whether the cpu backend's large products run on gemm_avx512, from TANDEM_CPU_GEMM (read once):
// see gemm_avx512_choice.
bool gemm_avx512_enabled();

// The choice for a value of TANDEM_CPU_GEMM (null when unset) on a CPU that does or does not
// support the kernel: auto (the default) uses it where supported, openblas never, tandem always;
// tandem without support, or any other value, throws Error naming the value.
bool gemm_avx512_choice(const char* value, bool supported);

// C [M, N] = op(A) op(B) + beta C for row-major matrices, beta 0 or 1 (beta 0 never reads C).
// op(A) is [M, K]: A itself with row stride lda, or, with trans_a, A [K, M] read transposed;
// likewise op(B) [K, N]. Each element of C sums its K products in the same order whatever the
// number of threads, so results do not depend on OMP_NUM_THREADS. Call it outside any parallel
// region: it opens its own.
void gemm_avx512(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, const float* a,
                 int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc);

}  // namespace tandem::backend::cpu

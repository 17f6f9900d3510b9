// The cpu backend's BLAS: OpenBLAS, loaded with dlopen on first use rather than linked, so that
// tandem chooses its sgemm kernels itself (see blas.cpp for why) and says which it got.
#pragma once

#include <cblas.h>  // types and enums only: the functions are called through Blas below

#include <string>

namespace tandem::backend::cpu {

struct Blas {
    using Sgemm = void (*)(CBLAS_ORDER, CBLAS_TRANSPOSE, CBLAS_TRANSPOSE, blasint M, blasint N,
                           blasint K, float alpha, const float* a, blasint lda, const float* b,
                           blasint ldb, float beta, float* c, blasint ldc);
    Sgemm sgemm = nullptr;
    std::string path;      // the file that was loaded
    std::string core;      // OpenBLAS's kernel family, e.g. "Cooperlake" or "Haswell"
    std::string config;    // openblas_get_config(): version and build options
    std::string chosen_by;  // why this core: auto-detected, TANDEM_BLAS_CORETYPE, ...
};

// Loads OpenBLAS once (thread-safe) and returns it; throws Error naming the package to install
// when the library cannot be loaded.
const Blas& blas();

// Logs the chosen core on stderr, once per process (the cpu backend calls it on its first
// product, so that a training run states it before its first step).
void log_blas_choice_once();

// C [M, N] = alpha op(A) op(B) + beta C, row-major, through the loaded sgemm.
inline void sgemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
                  const float* a, int64_t lda, const float* b, int64_t ldb, float beta, float* c,
                  int64_t ldc) {
    blas().sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
                 trans_b ? CblasTrans : CblasNoTrans, M, N, K, alpha, a, lda, b, ldb, beta, c, ldc);
}

}  // namespace tandem::backend::cpu

// Which of tandem's matrix-product kernels runs, and the call into it (gemm.h).
#include "backend/cpu/gemm.h"

#include <cstdlib>
#include <string>

#include "backend/cpu/gemm_blocked.h"
#include "core/error.h"

namespace tandem::backend::cpu {

const char* gemm_kernel_name(GemmKernel kernel) {
    switch (kernel) {
        case GemmKernel::avx512:
            return "AVX-512";
        case GemmKernel::avx2:
            return "AVX2";
        case GemmKernel::openblas:
            break;
    }
    return "OpenBLAS";
}

GemmKernel gemm_kernel_supported() {
#if defined(__x86_64__) && defined(__GNUC__)
    static const GemmKernel best = [] {
        if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
            __builtin_cpu_supports("avx512dq"))
            return GemmKernel::avx512;
        if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
            return GemmKernel::avx2;
        return GemmKernel::openblas;
    }();
    return best;
#else
    return GemmKernel::openblas;
#endif
}

bool gemm_kernel_runs(GemmKernel kernel) {
    // Every CPU with AVX-512 F also has AVX2 and FMA.
    return static_cast<int>(kernel) <= static_cast<int>(gemm_kernel_supported());
}

GemmKernel gemm_kernel_choice(const char* value, GemmKernel supported) {
    const std::string choice = value ? value : "auto";
    if (choice == "auto") return supported;
    if (choice == "openblas") return GemmKernel::openblas;
    if (choice != "tandem")
        throw Error("TANDEM_CPU_GEMM=", choice, ": expected auto, tandem or openblas");
    if (supported == GemmKernel::openblas)
        throw Error(
            "TANDEM_CPU_GEMM=tandem needs a CPU with AVX2 and FMA, or AVX-512, which this one "
            "lacks: use auto or openblas");
    return supported;
}

GemmKernel gemm_kernel_chosen() {
    static const GemmKernel chosen =
        gemm_kernel_choice(std::getenv("TANDEM_CPU_GEMM"), gemm_kernel_supported());
    return chosen;
}

namespace {

// The entry points of `kernel`, which callers pass only when this CPU runs it (never openblas).
const KernelEntries& entries(GemmKernel kernel) {
    const KernelEntries& e = kernel == GemmKernel::avx512 ? kAvx512Entries : kAvx2Entries;
    if (kernel == GemmKernel::openblas || !e.gemm) std::abort();
    return e;
}

}  // namespace

void own_gemm(GemmKernel kernel, bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K,
              const float* a, int64_t lda, const float* b, int64_t ldb, float beta, float* c,
              int64_t ldc) {
    entries(kernel).gemm({trans_a, trans_b, M, N, K, a, lda, b, ldb, beta, c, ldc});
}

int64_t packed_b_floats(GemmKernel kernel, int64_t K, int64_t N) {
    return entries(kernel).packed_b_floats(K, N);
}

void pack_b(GemmKernel kernel, bool trans_b, int64_t K, int64_t N, const float* b, int64_t ldb,
            float* packed) {
    entries(kernel).pack_b({false, trans_b, 0, N, K, nullptr, 0, b, ldb, 0.0f, nullptr, 0}, packed);
}

void gemm_packed_b(GemmKernel kernel, bool trans_a, int64_t M, int64_t N, int64_t K,
                   const float* a, int64_t lda, PackedB b, float beta, float* c, int64_t ldc) {
    entries(kernel).gemm_packed_b({trans_a, false, M, N, K, a, lda, nullptr, 0, beta, c, ldc},
                                  b.panels, b.K, b.N);
}

}  // namespace tandem::backend::cpu

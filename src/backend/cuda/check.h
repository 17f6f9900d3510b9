// TANDEM_CUDA_CHECK: every CUDA runtime and cuBLAS(Lt) call goes through it, so that a failure
// becomes a tandem::Error naming the call, the error string and file:line.
#pragma once

#include <cublasLt.h>
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include "core/error.h"

namespace tandem::backend::cuda {

[[noreturn]] void throw_cuda_error(const char* call, const char* what, long code, const char* file,
                                   int line);

inline void check_status(cudaError_t status, const char* call, const char* file, int line) {
    if (status != cudaSuccess) [[unlikely]]
        throw_cuda_error(call, cudaGetErrorString(status), static_cast<long>(status), file, line);
}
inline void check_status(cublasStatus_t status, const char* call, const char* file, int line) {
    if (status != CUBLAS_STATUS_SUCCESS) [[unlikely]]
        throw_cuda_error(call, cublasGetStatusString(status), static_cast<long>(status), file,
                         line);
}

}  // namespace tandem::backend::cuda

#define TANDEM_CUDA_CHECK(call) \
    ::tandem::backend::cuda::check_status((call), #call, __FILE__, __LINE__)
// After a kernel launch: catches bad launch configurations (not asynchronous faults, which the
// next synchronising call reports).
#define TANDEM_CUDA_CHECK_LAUNCH() TANDEM_CUDA_CHECK(cudaGetLastError())

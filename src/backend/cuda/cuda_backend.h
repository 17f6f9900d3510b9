// The CUDA backend: cuBLASLt for matrix products, hand-written kernels for everything else, one
// stream and a caching allocator. This header is plain C++ (no CUDA types) so that registry.cpp
// and the tests include it on any machine; it exists only in builds with TANDEM_HAS_CUDA. It is
// compiled into libtandem_cuda.so, which the registry loads on demand (extern "C"
// tandem_make_cuda_backend); the cuda tests link that library and call these directly.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <string>

#include "backend/backend.h"

namespace tandem::backend {

// nullptr with the reason in why_unavailable when no driver or no GPU is usable here.
std::unique_ptr<Backend> make_cuda_backend(std::string& why_unavailable);

// What the caching allocator holds: bytes obtained from cudaMalloc (reserved) and handed out
// (in_use), and how many cudaMalloc calls it made. `backend` must be the cuda backend.
struct CudaMemoryStats {
    size_t reserved_bytes = 0;
    size_t in_use_bytes = 0;
    size_t n_device_mallocs = 0;
};
CudaMemoryStats cuda_memory_stats(Backend& backend);

// Median time in milliseconds of one call of fn over n_runs runs, each timed with CUDA events on
// the backend's stream after n_warmup untimed runs (for benchmarks and notes).
double cuda_median_ms(Backend& backend, const std::function<void()>& fn, int n_runs,
                      int n_warmup = 3);

}  // namespace tandem::backend

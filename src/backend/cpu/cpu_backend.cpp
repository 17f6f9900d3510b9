// Placeholder until the OpenMP/BLAS kernels land: the cpu backend is the reference backend.
#include "backend/cpu/cpu_backend.h"

#include "backend/reference/reference_backend.h"

namespace tandem::backend {

std::unique_ptr<Backend> make_cpu_backend() { return make_reference_backend(); }

}  // namespace tandem::backend

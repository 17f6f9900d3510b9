// The CPU backend: OpenMP across rows, OpenBLAS for matrix products, inner loops compiled for
// several x86-64 levels and chosen at run time. f32 only.
#pragma once

#include <memory>

#include "backend/backend.h"

namespace tandem::backend {

std::unique_ptr<Backend> make_cpu_backend();

}  // namespace tandem::backend

// The reference backend: the plainest loops, accumulating in double. It defines correct; every
// other backend is tested against it. Supports f32 and f64 (f64 for gradient checks).
#pragma once

#include <memory>

#include "backend/backend.h"

namespace tandem::backend {

std::unique_ptr<Backend> make_reference_backend();

}  // namespace tandem::backend

// Finding backends by name. The list is explicit (no static self-registration, which a static
// library silently drops), so a new backend is one line in registry.cpp.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "backend/backend.h"

namespace tandem::backend {

// "reference", "cpu", "cuda" or "auto" (cuda when a GPU is usable, else cpu). Throws Error when
// the name is unknown or the backend is not usable here (with the reason: not built with CUDA,
// no GPU found). The backend lives for the whole process.
Backend& get_backend(std::string_view name);
// The backends usable on this machine, reference first.
std::vector<std::string> available_backends();
bool is_backend_available(std::string_view name);

}  // namespace tandem::backend

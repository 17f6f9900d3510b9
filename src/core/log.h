// Messages for the person running tandem, on stderr. Library code reports through these and
// never decides how to stop; cli/ owns the terminal (progress lines, exit codes).
#pragma once

#include <iostream>
#include <mutex>

#include "core/error.h"

namespace tandem {

std::mutex& log_mutex();

template <typename... Parts>
void log_info(const Parts&... parts) {
    std::lock_guard lock(log_mutex());
    std::cerr << Error::concat(parts...) << '\n';
}

template <typename... Parts>
void log_warn(const Parts&... parts) {
    std::lock_guard lock(log_mutex());
    std::cerr << "warning: " << Error::concat(parts...) << '\n';
}

}  // namespace tandem

// Messages for the person running tandem, on stderr. Library code reports through these and
// never decides how to stop; cli/ owns the terminal (progress lines, exit codes).
#pragma once

#include <atomic>
#include <iostream>
#include <mutex>

#include "core/error.h"

namespace tandem {

std::mutex& log_mutex();

// Details (which kernels a backend chose, ...) are off unless a command turns them on: `-v`,
// or a command whose whole output is its log (train, demo). Commands whose stdout is their
// product (generate's text) must not get a stray line in the middle of it on a terminal.
std::atomic<bool>& log_details_flag();
inline void set_log_details(bool on) { log_details_flag().store(on); }

template <typename... Parts>
void log_detail(const Parts&... parts) {
    if (!log_details_flag().load()) return;
    std::lock_guard lock(log_mutex());
    std::cerr << Error::concat(parts...) << '\n';
}

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

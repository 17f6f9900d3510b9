// The lock that keeps messages from several threads on separate lines, and whether details
// are shown.
#include "core/log.h"

namespace tandem {

std::mutex& log_mutex() {
    static std::mutex mutex;
    return mutex;
}

std::atomic<bool>& log_details_flag() {
    static std::atomic<bool> on{false};
    return on;
}

}  // namespace tandem

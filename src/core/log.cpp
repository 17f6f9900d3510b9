// The lock that keeps messages from several threads on separate lines.
#include "core/log.h"

namespace tandem {

std::mutex& log_mutex() {
    static std::mutex mutex;
    return mutex;
}

}  // namespace tandem

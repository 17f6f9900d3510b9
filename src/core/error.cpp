// The one place below cli/ that stops the process: a broken internal invariant.
#include "core/error.h"

#include <cstdio>
#include <cstdlib>

namespace tandem {

void assert_fail(const char* condition, const char* file, int line, const std::string& values) {
    std::fprintf(stderr, "tandem: internal error at %s:%d: %s failed%s%s\n", file, line, condition,
                 values.empty() ? "" : " with ", values.c_str());
    std::abort();
}

}  // namespace tandem

// The message of the tandem::Error a piece of code throws, or "no error": for tests that assert
// an error names its culprit.
#pragma once

#include <functional>
#include <string>

#include "core/error.h"

namespace tandem::testing {

inline std::string error_message(const std::function<void()>& f) {
    try {
        f();
    } catch (const Error& e) {
        return e.what();
    }
    return "no error";
}

}  // namespace tandem::testing

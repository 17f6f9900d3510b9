// tandem::Error for input a user or a file got wrong, and TANDEM_ASSERT for invariants only a
// tandem bug can break. Messages are built from parts: Error(path, ": tensor ", name, " is ", n).
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>

namespace tandem {

class Error : public std::runtime_error {
public:
    template <typename... Parts>
    explicit Error(const Parts&... parts) : std::runtime_error(concat(parts...)) {}

    template <typename... Parts>
    static std::string concat(const Parts&... parts) {
        std::ostringstream out;
        (out << ... << parts);
        return out.str();
    }
};

// Prints the failed condition with the values that matter and aborts: only for states that no
// input can produce. Always on, also in release builds: a silent wrong answer costs more.
[[noreturn]] void assert_fail(const char* condition, const char* file, int line,
                              const std::string& values);

}  // namespace tandem

#define TANDEM_ASSERT(cond, ...)                                                          \
    do {                                                                                  \
        if (!(cond)) [[unlikely]]                                                         \
            ::tandem::assert_fail(#cond, __FILE__, __LINE__,                              \
                                  ::tandem::detail::assert_values(__VA_ARGS__));          \
    } while (0)

namespace tandem::detail {
inline std::string assert_values() { return {}; }
template <typename... Values>
std::string assert_values(const Values&... values) {
    std::ostringstream out;
    const char* sep = "";
    ((out << sep << values, sep = ", "), ...);
    return out.str();
}
}  // namespace tandem::detail

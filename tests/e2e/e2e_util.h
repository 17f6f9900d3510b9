// Running the built `tandem` program from tests: a command line in, exit code and both output
// streams out, and a scratch directory per test suite.
#pragma once

#include <string>

namespace tandem::testing {

struct RunResult {
    int exit_code = -1;
    std::string out, err;
};

// Runs `tandem <args>` through the shell (args are shell words, quoted by the caller).
RunResult run_tandem(const std::string& args);
std::string shell_quote(const std::string& text);
// Runs `tandem <args>` (output discarded) and sends it SIGKILL after `seconds` unless it has
// ended by then. True when it was killed; otherwise exit_code holds how it ended.
bool run_tandem_killed_after(const std::string& args, double seconds, int* exit_code = nullptr);
std::string make_scratch_dir(const std::string& name);  // fresh, under the temp directory
std::string read_text(const std::string& path);

}  // namespace tandem::testing

// Running the built `tandem` program from tests: a command line in, exit code and both output
// streams out, a scratch directory per test suite, and the tiny model the e2e tests train.
#pragma once

#include <string>
#include <vector>

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

// The corpus the tiny model trains on: four of Debian's fortunes files (scripts/setup installs
// the package). Other files of /usr/share/games/fortunes are text it never saw.
const std::vector<std::string>& tiny_model_corpus();
// Trains the tiny model (a 2-layer Llama, d_model 64, context 64, 100 steps: seconds on 2 cores)
// under `dir`: dir/tokenizer.json (a BPE of 512 tokens), dir/data (5% held out for validation),
// dir/config.json and the run dir/run. Returns "" on success, else the failing step and its
// stderr (a missing corpus file included).
std::string train_tiny_model(const std::string& dir);

}  // namespace tandem::testing

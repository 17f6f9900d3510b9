// The CLI tests' runner; see cli_util.h.
#include "cli/cli_util.h"

#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdlib>

#include "common/test_util.h"
#include "io/atomic_file.h"

namespace tandem::testing {

std::string shell_quoted(const std::string& text) {
    std::string q = "'";
    for (char c : text) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
    return q + "'";
}

CliRun tandem(const TempDir& dir, const std::string& args, const std::string& stdin_file,
              const std::string& env) {
    // One OpenMP thread: on a loaded machine a team of spinning threads turns a tiny training
    // run of 0.3 s into 7 s, and these tests check behaviour, not speed.
    std::string cmd = "cd " + shell_quoted(dir.path()) + " && OMP_NUM_THREADS=1 " + env + " " +
                      shell_quoted(tandem_binary()) + " " + args +
                      " >" + shell_quoted(dir.file("stdout")) + " 2>" + shell_quoted(dir.file("stderr")) +
                      " <" + shell_quoted(stdin_file.empty() ? "/dev/null" : stdin_file);
    int status = std::system(cmd.c_str());
    return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, io::read_file(dir.file("stdout")),
            io::read_file(dir.file("stderr"))};
}

std::string fortune_corpus() {
    std::string text;
    for (int i = 0; i < 400; ++i)
        text +=
            "The quick brown fox " + std::to_string(i) + " jumps over the lazy dog's back.\n%\n";
    return text;
}

std::string trained_tokenizer(const TempDir& dir) {
    std::string in = dir.write("corpus.txt", fortune_corpus());
    CliRun r = tandem(dir, "tokenizer train --input " + shell_quoted(in) +
                               " --vocab-size 300 --special '<|endoftext|>' --out " +
                               shell_quoted(dir.file("tok.json")));
    EXPECT_EQ(r.code, 0) << r.err;
    return dir.file("tok.json");
}

}  // namespace tandem::testing

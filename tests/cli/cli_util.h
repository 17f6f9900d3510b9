// Runs the built `tandem` as a user does, for the CLI tests: a shell command line, stdout and
// stderr captured to files, the exit code (0 ok, 1 bad input, 2 bad usage) returned.
#pragma once

#include <string>

#include "common/temp_dir.h"

namespace tandem::testing {

struct CliRun {
    int code;
    std::string out, err;
};

// Runs `ENV tandem ARGS` in a shell inside `dir`, stdin from `stdin_file` when given (else
// /dev/null). ARGS and ENV (NAME=VALUE ...) are shell text: quote paths with shell_quoted().
CliRun tandem(const TempDir& dir, const std::string& args, const std::string& stdin_file = "",
              const std::string& env = "");

// `text` in single quotes for the shell.
std::string shell_quoted(const std::string& text);

// A tokenizer trained through the CLI on a small corpus (with <|endoftext|>, id 299 of 300);
// returns the path of its tokenizer.json.
std::string trained_tokenizer(const TempDir& dir);

// 400 short documents separated by "%" lines.
std::string fortune_corpus();

}  // namespace tandem::testing

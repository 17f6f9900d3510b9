// Fine-tuning data as JSON Lines, one example a line: {"messages": [{"role", "content"}, ...]}
// (roles system, user, assistant) or {"prompt", "completion"}. This file reads and checks the
// lines; rendering them with a chat template and masking the loss is train/sft_data.h's job.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "io/chat_message.h"

namespace tandem::io {

// One line of the file. A {"prompt", "completion"} line becomes a user turn and an assistant
// turn, with is_prompt_completion set (a model without a chat template concatenates them raw).
struct ChatExample {
    int64_t line = 0;  // 1-based, for messages
    std::vector<ChatMessage> turns;
    bool is_prompt_completion = false;
};

// A line that cannot be trained on, and why; `reason` starts with "FILE:LINE: ".
struct BadLine {
    int64_t line = 0;
    std::string reason;
};

struct ChatFile {
    std::vector<ChatExample> examples;
    std::vector<BadLine> bad_lines;  // in line order; the caller decides to skip or refuse them
    int64_t n_lines = 0;
    uint64_t checksum = 0;  // xxHash3 of the file's bytes: a resumed run checks it read the same
};

// Parses line `line` of `file`: the example, or nullopt with `reason` set. Bad: a blank line,
// invalid JSON, not an object, neither messages nor prompt/completion (or both), a field of the
// wrong type, an unknown role, no messages, no assistant turn (nothing to learn).
std::optional<ChatExample> parse_chat_line(std::string_view text, const std::string& file,
                                           int64_t line, std::string& reason);

// Every line of `path` ("-": standard input). Throws Error only when the file cannot be read;
// bad lines are returned, never dropped.
ChatFile read_chat_jsonl(const std::string& path);

}  // namespace tandem::io

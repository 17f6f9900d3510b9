// The prompts of `tandem generate --prompts FILE`: one prompt per line, or JSON Lines whose
// objects carry a "prompt" string. The first non-blank line decides which: a line that starts
// with '{' makes it JSON Lines, and then every line must be such an object.
#pragma once

#include <string>
#include <vector>

namespace tandem::io {

// Blank lines are skipped (a plain prompt file cannot hold an empty prompt; JSON Lines can't
// either: use --prompt ""). Throws Error naming the file and the line of a malformed JSON line,
// and for a file with no prompt at all. "-" reads standard input.
std::vector<std::string> read_prompt_file(const std::string& path);

}  // namespace tandem::io

// Reads a tokenizer.json in one pass, keeping its two large parts, model.vocab and model.merges,
// out of the JSON tree: they stream straight into flat vectors, which is what makes loading a
// 151k-token vocabulary faster than Hugging Face's own loader. Checks only their JSON types;
// tokenizer_files.cpp checks what they mean.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace tandem::io {

struct TokenizerJsonParts {
    nlohmann::json root;  // the whole file, with model.vocab and model.merges set to null
    bool has_vocab = false;
    std::vector<std::pair<std::string, int64_t>> vocab;  // (spelled token, id) in file order
    bool has_merges = false;
    std::vector<std::pair<std::string, std::string>> merges;  // (left, right) in rank order
};

// Throws tandem::Error naming `path` and the field: a syntax error (a truncated file) with the
// byte offset, a vocabulary id that is not an integer in [0, 2^31), a merge that is neither
// "a b" nor ["a", "b"].
TokenizerJsonParts read_tokenizer_json(std::string_view text, const std::string& path);

}  // namespace tandem::io

// Helpers shared by the tokenizer tests: a tiny byte-level BPE model and the message of the
// tandem::Error a call must throw.
#pragma once

#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

#include "core/error.h"
#include "io/bpe_tokenizer.h"

namespace tandem::io::testing_models {

// 256 byte tokens (id = byte) and merges given as pairs of byte strings, each merged token
// taking the next id, then <|endoftext|> as an added special token.
inline BpeModel tiny_model(const std::vector<std::pair<std::string, std::string>>& merges) {
    BpeModel m;
    for (int b = 0; b < 256; ++b) m.tokens.push_back(std::string(1, char(b)));
    auto id_of = [&](const std::string& s) {
        for (size_t i = 0; i < m.tokens.size(); ++i)
            if (m.tokens[i] == s) return int32_t(i);
        ADD_FAILURE() << "no token " << s;
        return int32_t(0);
    };
    for (const auto& [a, b] : merges) {
        m.merges.push_back({id_of(a), id_of(b), int32_t(m.tokens.size())});
        m.tokens.push_back(a + b);
    }
    m.added.push_back({"<|endoftext|>", int32_t(m.tokens.size()), true});
    return m;
}

// Runs `call` and returns the message of the tandem::Error it must throw.
template <typename F>
std::string error_of(F&& call) {
    try {
        call();
    } catch (const Error& e) {
        return e.what();
    }
    ADD_FAILURE() << "no error";
    return "";
}

}  // namespace tandem::io::testing_models

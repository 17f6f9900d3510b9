// Splits text into the pieces that BPE merges within ("words"), by a tokenizer's split pattern,
// compiled with PCRE2 (UTF + UCP for the Unicode letter/number classes, JIT for speed). Knows
// nothing of vocabularies; bpe_tokenizer.cpp owns those.
#pragma once

#include <algorithm>
#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

namespace tandem::io {

// GPT-2's pattern (also tiktoken's "gpt2" and HF's ByteLevel pre-tokenizer with use_regex).
inline constexpr std::string_view kGpt2Pattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";
// Llama 3's (tokenizer.json Split regex; digits in runs of at most three) and Qwen2's (the same
// with single digits), as their tokenizer.json files spell them.
inline constexpr std::string_view kLlama3Pattern =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
inline constexpr std::string_view kQwen2Pattern =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

class Pretokenizer {
   public:
    // Throws tandem::Error (with PCRE2's message and offset) when the pattern does not compile.
    explicit Pretokenizer(std::string pattern);
    ~Pretokenizer();
    Pretokenizer(Pretokenizer&&) noexcept;
    Pretokenizer& operator=(Pretokenizer&&) noexcept;

    // Calls piece(std::string_view) for each piece of `text` in order; the pieces cover `text`
    // exactly. Bytes that are not valid UTF-8 never match the pattern (PCRE2_MATCH_INVALID_UTF),
    // so each run of them between matches becomes a piece of its own and still round-trips.
    template <typename F>
    void split(std::string_view text, F&& piece) const {
        size_t done = 0, from = 0, start = 0, end = 0;
        while (from < text.size() && find(text, from, start, end)) {
            // An empty match (a pattern such as "x*") is no piece: look again one byte further,
            // leaving the text before it for the next piece, so that no byte is given twice.
            if (end <= start || start < done) {
                from = std::max(start, from) + 1;
                continue;
            }
            if (start > done) piece(text.substr(done, start - done));
            piece(text.substr(start, end - start));
            done = from = end;
        }
        if (done < text.size()) piece(text.substr(done));
    }

    const std::string& pattern() const { return pattern_; }

   private:
    // The first match at or after `from`: [start, end). False when there is none.
    bool find(std::string_view text, size_t from, size_t& start, size_t& end) const;

    std::string pattern_;
    void* code_ = nullptr;  // pcre2_code_8
    bool has_jit_ = false;
};

}  // namespace tandem::io

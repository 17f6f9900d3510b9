#include "io/pretokenizer.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "core/error.h"

namespace tandem::io {
namespace {

// The Qwen2/Qwen3 split pattern, as in their tokenizer.json.
const char* kQwenPattern =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
// Llama 3's: like Qwen's but numbers in groups of up to three digits.
const char* kLlama3Pattern =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

std::vector<std::string> pieces(const Pretokenizer& p, std::string_view text) {
    std::vector<std::string> out;
    p.split(text, [&](std::string_view piece) { out.emplace_back(piece); });
    return out;
}

using Pieces = std::vector<std::string>;

TEST(Pretokenizer, Gpt2SplitsWordsContractionsNumbersAndSpaces) {
    Pretokenizer p{std::string(kGpt2Pattern)};
    EXPECT_EQ(pieces(p, "I'll pay 12345 now!!  ok"),
              (Pieces{"I", "'ll", " pay", " 12345", " now", "!!", " ", " ok"}));
    // GPT-2's contractions are case-sensitive: 'LL is not one.
    EXPECT_EQ(pieces(p, "WE'LL"), (Pieces{"WE", "'", "LL"}));
}

TEST(Pretokenizer, UnicodeLettersAreLettersNotBytes) {
    Pretokenizer p{std::string(kGpt2Pattern)};
    EXPECT_EQ(pieces(p, "naïve café 中文"), (Pieces{"na\xc3\xafve", " caf\xc3\xa9", " 中文"}));
}

TEST(Pretokenizer, QwenSplitsDigitsOneByOneAndFoldsContractionCase) {
    Pretokenizer p{kQwenPattern};
    EXPECT_EQ(pieces(p, "WE'LL 2024"), (Pieces{"WE", "'LL", " ", "2", "0", "2", "4"}));
}

TEST(Pretokenizer, Llama3GroupsDigitsByThree) {
    Pretokenizer p{kLlama3Pattern};
    EXPECT_EQ(pieces(p, "1234567"), (Pieces{"123", "456", "7"}));
}

TEST(Pretokenizer, InvalidUtf8BecomesPiecesOfItsOwnAndCoversTheInput) {
    Pretokenizer p{std::string(kGpt2Pattern)};
    std::string text = "ab\xff\xfe cd \xc3";
    Pieces got = pieces(p, text);
    EXPECT_EQ(got, (Pieces{"ab", "\xff\xfe", " cd", " ", "\xc3"}));
    std::string joined;
    for (const auto& s : got) joined += s;
    EXPECT_EQ(joined, text);
}

TEST(Pretokenizer, LongRunsDoNotExhaustTheJitStack) {
    Pretokenizer p{kQwenPattern};
    std::string spaces(1 << 20, ' ');
    spaces += "x";
    Pieces got = pieces(p, spaces);
    ASSERT_EQ(got.size(), 2u);
    EXPECT_EQ(got[0].size(), (1u << 20) - 1);
}

// A pattern that can match nothing (found by the tokenizer.json fuzzer: a hostile Split regex
// ending in "x*") gave the text before an empty match twice, so decode(encode(x)) grew.
TEST(Pretokenizer, EmptyMatchesGiveNoByteTwice) {
    Pretokenizer p{"b|a*"};
    EXPECT_EQ(pieces(p,
                     "{\n\xFF\xFE"
                     "aab{b"),
              (Pieces{"{\n\xFF\xFE", "aa", "b", "{", "b"}));
    Pretokenizer q{"x*"};
    EXPECT_EQ(pieces(q, "abc"), (Pieces{"abc"}));
}

TEST(Pretokenizer, RejectsAPatternThatDoesNotCompileWithItsText) {
    try {
        Pretokenizer p{"(unclosed"};
        FAIL() << "no error";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("(unclosed"), std::string::npos) << e.what();
    }
}

}  // namespace
}  // namespace tandem::io

#include "io/gguf_tokenizer.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <functional>

#include "common/error_message.h"
#include "core/error.h"
#include "io/pretokenizer.h"

namespace tandem::io {
namespace {

namespace fs = std::filesystem;

// 256 byte tokens, merged tokens after them, an id the vocabulary skips, a special and a
// non-special added token, and every field a GGUF tokenizer carries.
BpeModel sample_model(std::string_view pattern) {
    BpeModel m;
    for (int b = 0; b < 256; ++b) m.tokens.push_back(std::string(1, char(b)));
    auto merge = [&](const std::string& a, const std::string& b) {
        auto id = [&](const std::string& s) {
            for (size_t i = 0; i < m.tokens.size(); ++i)
                if (m.tokens[i] == s) return int32_t(i);
            ADD_FAILURE() << s;
            return int32_t(0);
        };
        m.merges.push_back({id(a), id(b), int32_t(m.tokens.size())});
        m.tokens.push_back(a + b);
    };
    merge(" ", "t");
    merge(" t", "h");
    merge("h", "e");
    merge(" th", "e");
    merge("\n", "\n");
    m.tokens.push_back("");     // a hole: id 261
    m.tokens.push_back("xyz");  // a token no merge makes: id 262
    m.added.push_back({"<|endoftext|>", 263, true});
    m.added.push_back({"<think>", 264, false});
    m.pattern = pattern;
    m.ignore_merges = pattern == kLlama3Pattern;
    m.normalize_nfc = pattern == kQwen2Pattern;
    m.bos_id = 263;
    m.eos_id = 263;
    m.pad_id = 261;
    m.add_bos = true;
    m.add_eos = false;
    m.chat_template = "{% for m in messages %}{{ m.content }}{% endfor %}";
    return m;
}

using testing::error_message;

TEST(GgufTokenizer, RoundTripsEveryFieldForEachPattern) {
    for (std::string_view pattern : {kGpt2Pattern, kLlama3Pattern, kQwen2Pattern}) {
        const BpeModel m = sample_model(pattern);
        GgufMetadata md("t.gguf");
        add_bpe_model_to_gguf(md, m);
        const BpeModel back = bpe_model_from_gguf(md);
        EXPECT_EQ(back.tokens, m.tokens);
        ASSERT_EQ(back.merges.size(), m.merges.size());
        for (size_t i = 0; i < m.merges.size(); ++i) {
            EXPECT_EQ(back.merges[i].left, m.merges[i].left);
            EXPECT_EQ(back.merges[i].right, m.merges[i].right);
            EXPECT_EQ(back.merges[i].merged, m.merges[i].merged);
        }
        ASSERT_EQ(back.added.size(), 2u);
        EXPECT_EQ(back.added[0].content, "<|endoftext|>");
        EXPECT_TRUE(back.added[0].is_special);
        EXPECT_EQ(back.added[1].content, "<think>");
        EXPECT_EQ(back.added[1].id, 264);
        EXPECT_FALSE(back.added[1].is_special);
        EXPECT_EQ(back.pattern, m.pattern);
        EXPECT_EQ(back.ignore_merges, m.ignore_merges);
        EXPECT_EQ(back.normalize_nfc, m.normalize_nfc);
        EXPECT_EQ(back.bos_id, 263);
        EXPECT_EQ(back.eos_id, 263);
        EXPECT_EQ(back.pad_id, 261);
        EXPECT_TRUE(back.add_bos);
        EXPECT_FALSE(back.add_eos);
        EXPECT_EQ(back.chat_template, m.chat_template);
        const std::string text = "the thin\n\nhe <think>x<|endoftext|>";
        EXPECT_EQ(BpeTokenizer(back).encode(text), BpeTokenizer(m).encode(text));
    }
}

TEST(GgufTokenizer, WritesWhatLlamaCppsConverterWrites) {
    GgufMetadata md;
    add_bpe_model_to_gguf(md, sample_model(kLlama3Pattern));
    EXPECT_EQ(md.get_string("tokenizer.ggml.model"), "gpt2");
    EXPECT_EQ(md.get_string("tokenizer.ggml.pre"), "llama-bpe");
    const auto& tokens = md.get_strings("tokenizer.ggml.tokens");
    ASSERT_EQ(tokens.size(), 265u);
    EXPECT_EQ(tokens[' '], "Ġ");  // GPT-2's byte characters
    EXPECT_EQ(tokens[256], "Ġt");
    EXPECT_EQ(tokens[261], "[PAD261]");
    EXPECT_EQ(tokens[263], "<|endoftext|>");
    const GgufArray& types = md.get_array("tokenizer.ggml.token_type", GgufType::I32);
    EXPECT_EQ(types.int_at(0), 1);    // normal
    EXPECT_EQ(types.int_at(261), 5);  // unused
    EXPECT_EQ(types.int_at(263), 3);  // control
    EXPECT_EQ(types.int_at(264), 4);  // user-defined
    EXPECT_EQ(md.get_strings("tokenizer.ggml.merges")[1], "Ġt h");
    EXPECT_TRUE(std::holds_alternative<uint32_t>(md.get("tokenizer.ggml.bos_token_id")));
    EXPECT_TRUE(std::holds_alternative<bool>(md.get("tokenizer.ggml.add_bos_token")));
    EXPECT_EQ(gguf_pre_tokenizer_name(kGpt2Pattern), "gpt-2");
    EXPECT_EQ(gguf_pre_tokenizer_name(kQwen2Pattern), "qwen2");
    EXPECT_EQ(gguf_pre_tokenizer_pattern("llama3", "x"), kLlama3Pattern);
    EXPECT_EQ(gguf_pre_tokenizer_pattern("deepseek-r1-qwen", "x"), kQwen2Pattern);

    BpeModel odd = sample_model(kGpt2Pattern);
    odd.pattern = "\\s+|\\S+";
    EXPECT_NE(error_message([&] {
                  add_bpe_model_to_gguf(md, odd);
              }).find("has no llama.cpp pre-tokenizer name"),
              std::string::npos);
}

TEST(GgufTokenizer, RoundTripsThroughAFile) {
    const fs::path file =
        fs::temp_directory_path() / ("tandem_gguf_tok_" + std::to_string(::getpid()) + ".gguf");
    const BpeModel m = sample_model(kQwen2Pattern);
    GgufMetadata md;
    md.set("general.architecture", std::string("qwen2"));
    add_bpe_model_to_gguf(md, m);
    save_gguf(file, md, {});
    const BpeModel back = bpe_model_from_gguf(GgufReader(file).metadata());
    fs::remove(file);
    EXPECT_EQ(back.tokens, m.tokens);
    EXPECT_EQ(back.chat_template, m.chat_template);
}

TEST(GgufTokenizer, Llama3DefaultsToAddBosAsLlamaCppDoes) {
    GgufMetadata md;
    add_bpe_model_to_gguf(md, sample_model(kLlama3Pattern));
    GgufMetadata without("m");
    for (const auto& [k, v] : md.entries())
        if (k != "tokenizer.ggml.add_bos_token") without.set(k, v);
    EXPECT_TRUE(bpe_model_from_gguf(without).add_bos);
    without.set("tokenizer.ggml.pre", std::string("gpt-2"));
    EXPECT_FALSE(bpe_model_from_gguf(without).add_bos);
}

// Each broken tokenizer: one Error naming the file and the key or token.
class GgufTokenizerRejects : public ::testing::Test {
   protected:
    std::string with(const std::function<void(GgufMetadata&)>& edit) {
        GgufMetadata md("tok.gguf");
        add_bpe_model_to_gguf(md, sample_model(kGpt2Pattern));
        edit(md);
        return error_message([&] { bpe_model_from_gguf(md); });
    }
    void set_token(GgufMetadata& md, size_t id, const std::string& s) {
        auto tokens = md.get_strings("tokenizer.ggml.tokens");
        tokens[id] = s;
        md.set("tokenizer.ggml.tokens", GgufArray::of_strings(tokens));
    }
    void set_type(GgufMetadata& md, size_t id, int32_t type) {
        const auto wide = md.get_ints("tokenizer.ggml.token_type");
        std::vector<int32_t> types(wide.begin(), wide.end());
        types[id] = type;
        md.set("tokenizer.ggml.token_type", GgufArray::of<int32_t>(types));
    }
};

TEST_F(GgufTokenizerRejects, SentencePieceByName) {
    EXPECT_EQ(with([](GgufMetadata& m) { m.set("tokenizer.ggml.model", std::string("llama")); }),
              "tok.gguf: tokenizer.ggml.model is 'llama' (SentencePiece), which tandem does not "
              "read (it reads byte-level BPE, \"gpt2\")");
}

TEST_F(GgufTokenizerRejects, UnknownOrMissingPreTokenizer) {
    EXPECT_NE(with([](GgufMetadata& m) { m.set("tokenizer.ggml.pre", std::string("chatglm-bpe")); })
                  .find("tok.gguf: tokenizer.ggml.pre is 'chatglm-bpe', a pre-tokenizer tandem "
                        "does not know"),
              std::string::npos);
    EXPECT_NE(with([](GgufMetadata& m) {
                  m.set("tokenizer.ggml.pre", std::string("default"));
              }).find("tokenizer.ggml.pre is 'default'"),
              std::string::npos);
}

TEST_F(GgufTokenizerRejects, TokenTypesThatAreNotByteLevel) {
    EXPECT_NE(with([&](GgufMetadata& m) {
                  set_type(m, 65, 6);
              }).find("tok.gguf: token 65 ('A') has type 6 (byte)"),
              std::string::npos);
    EXPECT_NE(with([](GgufMetadata& m) {
                  m.set("tokenizer.ggml.token_type",
                        GgufArray::of<int32_t>(std::vector<int32_t>{1}));
              }).find("token_type has 1 entries but tokenizer.ggml.tokens has 265"),
              std::string::npos);
}

TEST_F(GgufTokenizerRejects, TokenNotSpelledInByteCharacters) {
    // A raw space is not one of GPT-2's byte characters (it is spelled Ġ).
    EXPECT_NE(with([&](GgufMetadata& m) {
                  set_token(m, 256, " t");
              }).find("token 256 (' t') is not spelled in GPT-2's byte characters"),
              std::string::npos);
}

TEST_F(GgufTokenizerRejects, MissingByteAndDuplicateToken) {
    EXPECT_NE(with([&](GgufMetadata& m) {
                  set_type(m, 10, 5);
              }).find("tokenizer.ggml.tokens lacks the single byte 0xa"),
              std::string::npos);
    EXPECT_NE(with([&](GgufMetadata& m) {
                  set_token(m, 259, "Ġt");
              }).find("token 259 ('Ġt') repeats token 256"),
              std::string::npos);
}

TEST_F(GgufTokenizerRejects, MergeOfUnknownTokens) {
    EXPECT_NE(
        with([](GgufMetadata& m) {
            auto merges = m.get_strings("tokenizer.ggml.merges");
            merges[2] = "x yz";
            m.set("tokenizer.ggml.merges", GgufArray::of_strings(merges));
        }).find("tok.gguf: merge 2 ('x yz') names 'yz', which is not in tokenizer.ggml.tokens"),
        std::string::npos);
    EXPECT_NE(with([](GgufMetadata& m) {
                  m.set("tokenizer.ggml.merges", GgufArray::of_strings({"abc"}));
              }).find("merge 0 ('abc') is not two tokens separated by one space"),
              std::string::npos);
}

TEST_F(GgufTokenizerRejects, SpecialIdOutOfRange) {
    EXPECT_EQ(with([](GgufMetadata& m) { m.set("tokenizer.ggml.eos_token_id", uint32_t{5000}); }),
              "tok.gguf: tokenizer.ggml.eos_token_id is 5000, outside the 265 tokens");
}

TEST_F(GgufTokenizerRejects, WrongKeyTypes) {
    EXPECT_NE(with([](GgufMetadata& m) {
                  m.set("tokenizer.ggml.add_bos_token", uint8_t{1});
              }).find("'tokenizer.ggml.add_bos_token' is of type u8 but bool was expected"),
              std::string::npos);
    EXPECT_NE(with([](GgufMetadata& m) {
                  m.set("tokenizer.ggml.tokens", std::string("x"));
              }).find("'tokenizer.ggml.tokens' is of type string but array of string was expected"),
              std::string::npos);
}

// llama.cpp wants a token for every embedding row: a model padded past its tokenizer (Qwen3:
// 151,669 tokens, 151,936 rows) gets unused placeholders, which reading back ignores.
TEST(GgufTokenizer, PadsTheTokenListToTheEmbeddingRows) {
    const BpeModel m = sample_model(kQwen2Pattern);
    size_t n = m.tokens.size();
    for (const AddedToken& t : m.added) n = std::max(n, size_t(t.id) + 1);
    GgufMetadata md;
    md.set("general.architecture", std::string("qwen2"));
    add_bpe_model_to_gguf(md, m, n + 5);
    const std::vector<std::string>& tokens = md.get_strings("tokenizer.ggml.tokens");
    ASSERT_EQ(tokens.size(), n + 5);
    EXPECT_EQ(tokens.back(), "[PAD" + std::to_string(n + 4) + "]");
    EXPECT_EQ(md.get_ints("tokenizer.ggml.token_type").back(), 5);  // unused
    const BpeModel back = bpe_model_from_gguf(md);
    EXPECT_EQ(back.tokens, m.tokens);
    EXPECT_EQ(back.added.size(), m.added.size());
}

}  // namespace
}  // namespace tandem::io

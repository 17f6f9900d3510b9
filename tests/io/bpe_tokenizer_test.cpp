#include "io/bpe_tokenizer.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "common/temp_dir.h"
#include "common/test_util.h"
#include "core/error.h"
#include "io/atomic_file.h"
#include "io/byte_unicode.h"
#include "io/tokenizer_files.h"
#include "tokenizer_test_models.h"

namespace tandem::io {
namespace {

using Ids = std::vector<int32_t>;
using testing_models::error_of;
using testing_models::tiny_model;

// The textbook algorithm, for comparison: merge the lowest-ranked adjacent pair, leftmost first.
Ids naive_merge(const BpeModel& m, const std::string& piece) {
    Ids ids;
    for (char c : piece) ids.push_back(uint8_t(c));
    for (;;) {
        size_t best = 0, best_rank = SIZE_MAX;
        for (size_t i = 0; i + 1 < ids.size(); ++i)
            for (size_t r = 0; r < m.merges.size() && r < best_rank; ++r)
                if (m.merges[r].left == ids[i] && m.merges[r].right == ids[i + 1])
                    best = i, best_rank = r;
        if (best_rank == SIZE_MAX) return ids;
        ids[best] = m.merges[best_rank].merged;
        ids.erase(ids.begin() + long(best) + 1);
    }
}

TEST(BpeTokenizer, MergesByRankNotByLength) {
    // "hello": (l,l) ranks before (h,e), so "he" + "ll" + "o" -> then (he, ll) -> "hell".
    BpeTokenizer tok(tiny_model({{"l", "l"}, {"h", "e"}, {"he", "ll"}, {"hell", "o"}}));
    EXPECT_EQ(tok.encode("hello"), (Ids{259}));
    EXPECT_EQ(tok.encode(" hello"), (Ids{' ', 259}));  // the space stays: no merge takes it
    EXPECT_EQ(tok.encode("hell"), (Ids{258}));
    EXPECT_EQ(tok.encode("helo"), (Ids{257, 'l', 'o'}));
}

TEST(BpeTokenizer, OverlappingPairsMergeLeftmostFirst) {
    BpeTokenizer tok(tiny_model({{"a", "a"}}));
    EXPECT_EQ(tok.encode("aaa"), (Ids{256, 'a'}));
    EXPECT_EQ(tok.encode("aaaa"), (Ids{256, 256}));
}

TEST(BpeTokenizer, LongPiecesMergeExactlyLikeShortOnes) {
    BpeModel m = tiny_model({{"a", "b"}, {"ab", "ab"}, {"b", "a"}, {"abab", "ab"}, {"ba", "ba"}});
    BpeTokenizer tok(m);
    std::mt19937 gen(7);
    for (int trial = 0; trial < 20; ++trial) {
        std::string word;
        size_t n = 100 + gen() % 400;  // past the 128-symbol switch to the heap
        for (size_t i = 0; i < n; ++i) word += "ab"[gen() % 2];
        EXPECT_EQ(tok.encode(word), naive_merge(m, word)) << word;
    }
}

TEST(BpeTokenizer, MatchesAddedTokensBeforeSplitting) {
    BpeTokenizer tok(tiny_model({{"h", "e"}}));
    int32_t eot = tok.eot_id();
    EXPECT_EQ(eot, 257);
    EXPECT_EQ(tok.encode("he<|endoftext|>he"), (Ids{256, eot, 256}));
    Ids ordinary;
    tok.encode_ordinary("<|endoftext|>", ordinary);
    EXPECT_EQ(ordinary.size(), 13u);  // its 13 bytes (no merge applies), no special id
    EXPECT_EQ(tok.decode(tok.encode("x<|endoftext|>")), "x<|endoftext|>");
}

TEST(BpeTokenizer, RoundTripsArbitraryBytesIncludingInvalidUtf8) {
    BpeTokenizer tok(tiny_model({{"h", "e"}, {" ", "t"}, {"\xc3", "\xa9"}}));
    std::mt19937 gen(1);
    for (int trial = 0; trial < 200; ++trial) {
        std::string text(gen() % 300, '\0');
        for (char& c : text) c = char(gen() % 4 == 0 ? gen() % 256 : " hetéx\n"[gen() % 7]);
        EXPECT_EQ(tok.decode(tok.encode(text)), text);
    }
}

TEST(BpeTokenizer, EncodesTheSameOnManyThreads) {
    BpeTokenizer tok(tiny_model({{"h", "e"}, {"l", "l"}, {"he", "ll"}}));
    std::string text;
    for (int i = 0; i < 2000; ++i) text += "hello world " + std::to_string(i) + "\n";
    Ids want = tok.encode(text);
    std::vector<Ids> got(4);
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) threads.emplace_back([&, t] { got[t] = tok.encode(text); });
    for (auto& th : threads) th.join();
    for (const Ids& g : got) EXPECT_EQ(g, want);
}

TEST(BpeTokenizer, IgnoreMergesTakesWholeVocabularyPiecesDirectly) {
    // "abc" is in the vocabulary but no merge builds it (Llama 3's tokenizer.json has such).
    BpeModel m = tiny_model({{"a", "b"}});
    m.tokens.push_back("abc");
    m.added[0].id = int32_t(m.tokens.size());
    EXPECT_EQ(BpeTokenizer(m).encode("abc"), (Ids{256, 'c'}));
    m.ignore_merges = true;
    EXPECT_EQ(BpeTokenizer(m).encode("abc"), (Ids{257}));
    // "abcab" is one piece that is not in the vocabulary, so it merges as usual.
    EXPECT_EQ(BpeTokenizer(m).encode("abcab"), (Ids{256, 'c', 256}));
}

TEST(BpeTokenizer, DecodeNamesAnUnknownId) {
    BpeTokenizer tok(tiny_model({}));
    try {
        tok.decode(Ids{1, 99999});
        FAIL() << "no error";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("99999"), std::string::npos) << e.what();
    }
}

TEST(BpeTokenizer, EotIdListsTheSpecialsWhenThereIsNone) {
    BpeModel m = tiny_model({});
    m.added = {{"<|im_start|>", 256, true}};
    BpeTokenizer tok(m);
    try {
        tok.eot_id();
        FAIL() << "no error";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("<|im_start|>"), std::string::npos) << e.what();
    }
}

TEST(TokenizerFiles, TokenizerJsonRoundTripsThroughSaveAndLoad) {
    testing::TempDir dir;
    BpeModel m = tiny_model({{"h", "e"}, {" ", "w"}, {"\n", "\n"}});
    save_hf_tokenizer_json(m, dir.file("tokenizer.json"));
    BpeTokenizer a(m), b = load_tokenizer(dir.path());
    std::string text = "he said\n\n we <|endoftext|> \xff";
    EXPECT_EQ(a.encode(text), b.encode(text));
    EXPECT_EQ(b.vocab_size(), 260);
    EXPECT_EQ(b.eot_id(), 259);
}

// encoder.json for the 256 bytes (id = byte) plus `extra` spelled tokens with the next ids.
std::string gpt2_encoder_json(const std::vector<std::string>& extra) {
    nlohmann::json j;
    for (int b = 0; b < 256; ++b) j[bytes_to_unicode(std::string(1, char(b)))] = b;
    for (size_t i = 0; i < extra.size(); ++i) j[extra[i]] = 256 + i;
    return j.dump();
}

TEST(TokenizerFiles, SplitPatternAndIgnoreMergesSurviveSaveAndLoad) {
    testing::TempDir dir;
    BpeModel m = tiny_model({{"1", "2"}});
    m.pattern =
        R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
    m.ignore_merges = true;
    save_hf_tokenizer_json(m, dir.file("tokenizer.json"));
    BpeTokenizer tok = load_tokenizer(dir.file("tokenizer.json"));
    EXPECT_EQ(tok.model().pattern, m.pattern);
    EXPECT_TRUE(tok.model().ignore_merges);
    // Digits go in groups of three: "123" "45", and only (1, 2) merges.
    EXPECT_EQ(tok.encode("12345"), (Ids{256, '3', '4', '5'}));
}

TEST(TokenizerFiles, LoadsGpt2EncoderJsonAndVocabBpe) {
    testing::TempDir dir;
    // Spelled in GPT-2's byte characters: "Ġ" stands for the space byte.
    dir.write("gpt2/encoder.json", gpt2_encoder_json({"Ġt", "he", "Ġthe", "<|endoftext|>"}));
    dir.write("gpt2/vocab.bpe", "#version: 0.2\nĠ t\nh e\nĠt he\n");
    BpeTokenizer tok = load_tokenizer(dir.file("gpt2"));
    EXPECT_EQ(tok.encode(" the"), (Ids{258}));
    EXPECT_EQ(tok.encode("the"), (Ids{'t', 257}));
    EXPECT_EQ(tok.eot_id(), 259);
    EXPECT_EQ(tok.vocab_size(), 260);
    EXPECT_EQ(tok.special_ids(), (Ids{259}));
}

TEST(TokenizerFiles, MergeNamingAnUnknownTokenNamesFileLineAndToken) {
    testing::TempDir dir;
    dir.write("gpt2/encoder.json", gpt2_encoder_json({"Ġt"}));
    dir.write("gpt2/vocab.bpe", "#version: 0.2\nĠ t\nĠt zzz\n");
    std::string what = error_of([&] { load_tokenizer(dir.file("gpt2")); });
    EXPECT_NE(what.find("vocab.bpe:3"), std::string::npos) << what;
    EXPECT_NE(what.find("'zzz'"), std::string::npos) << what;
}

TEST(TokenizerFiles, MissingFileIsNamed) {
    std::string what = error_of([&] { load_tokenizer("/no/such/dir/tokenizer.json"); });
    EXPECT_NE(what.find("/no/such/dir/tokenizer.json"), std::string::npos) << what;
    testing::TempDir dir;
    what = error_of([&] { load_tokenizer(dir.path()); });
    EXPECT_NE(what.find("neither tokenizer.json nor encoder.json"), std::string::npos) << what;
}

TEST(TokenizerFiles, MalformedJsonIsNamed) {
    testing::TempDir dir;
    std::string path = dir.write("tokenizer.json", "{\"model\": {\"vocab\": [1, 2");
    std::string what = error_of([&] { load_tokenizer(path); });
    EXPECT_NE(what.find(path + ": not valid JSON"), std::string::npos) << what;
}

TEST(TokenizerFiles, VocabularyWithoutAllBytesIsRefused) {
    testing::TempDir dir;
    BpeModel m = tiny_model({});
    std::string json = to_hf_tokenizer_json(m);
    auto j = nlohmann::json::parse(json);
    j["model"]["vocab"].erase(bytes_to_unicode("A"));
    std::string path = dir.write("tokenizer.json", j.dump());
    std::string what = error_of([&] { load_tokenizer(path); });
    EXPECT_NE(what.find(path), std::string::npos) << what;
    EXPECT_NE(what.find("0x41"), std::string::npos) << what;
}

TEST(TokenizerFiles, UnsupportedModelTypeIsNamed) {
    testing::TempDir dir;
    std::string path =
        dir.write("tokenizer.json", R"({"model": {"type": "Unigram", "vocab": []}})");
    std::string what = error_of([&] { load_tokenizer(path); });
    EXPECT_NE(what.find("'Unigram' is not BPE"), std::string::npos) << what;
}

}  // namespace
}  // namespace tandem::io

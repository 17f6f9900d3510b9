// `tandem tokenizer ...` and `tandem prepare` as a user runs them: the built binary, its exit
// codes (0 ok, 1 bad input, 2 bad usage) and its one-line errors on stderr.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "common/temp_dir.h"
#include "common/test_util.h"
#include "io/atomic_file.h"

namespace tandem {
namespace {

struct CliRun {
    int code;
    std::string out, err;
};

// Runs `tandem ARGS` in a shell, stdin from `stdin_file` when given.
CliRun tandem(const testing::TempDir& dir, const std::string& args,
              const std::string& stdin_file = "") {
    std::string cmd = "'" + testing::tandem_binary() + "' " + args + " >'" + dir.file("stdout") +
                      "' 2>'" + dir.file("stderr") + "'" +
                      (stdin_file.empty() ? " </dev/null" : " <'" + stdin_file + "'");
    int status = std::system(cmd.c_str());
    return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, io::read_file(dir.file("stdout")),
            io::read_file(dir.file("stderr"))};
}

std::string corpus() {
    std::string text;
    for (int i = 0; i < 400; ++i)
        text +=
            "The quick brown fox " + std::to_string(i) + " jumps over the lazy dog's back.\n%\n";
    return text;
}

// Trains a small tokenizer through the CLI and returns the path of its tokenizer.json.
std::string trained(const testing::TempDir& dir) {
    std::string in = dir.write("corpus.txt", corpus());
    CliRun r = tandem(dir, "tokenizer train --input '" + in +
                               "' --vocab-size 300 --special '<|endoftext|>' --out '" +
                               dir.file("tok.json") + "'");
    EXPECT_EQ(r.code, 0) << r.err;
    return dir.file("tok.json");
}

TEST(TokenizerCli, EncodeThenDecodeGivesBackTheBytes) {
    testing::TempDir dir;
    std::string tok = trained(dir);
    std::string text = "The lazy fox said: \xff\xfe not UTF-8, <|endoftext|> and\r\n tabs\t\n";
    std::string in = dir.write("in.txt", text);
    CliRun enc = tandem(dir, "tokenizer encode --tokenizer '" + tok + "'", in);
    ASSERT_EQ(enc.code, 0) << enc.err;
    EXPECT_NE(enc.out.find("299"), std::string::npos) << "<|endoftext|> is matched: " << enc.out;
    std::string ids = dir.write("ids.txt", enc.out);
    CliRun dec = tandem(dir, "tokenizer decode --tokenizer '" + tok + "' --input '" + ids + "'");
    ASSERT_EQ(dec.code, 0) << dec.err;
    EXPECT_EQ(dec.out, text);
}

TEST(TokenizerCli, MissingTokenizerIsExitOneNamingThePath) {
    testing::TempDir dir;
    CliRun r =
        tandem(dir, "tokenizer encode --tokenizer /no/such/tokenizer.json", dir.write("in", "x"));
    EXPECT_EQ(r.code, 1);
    EXPECT_NE(r.err.find("/no/such/tokenizer.json"), std::string::npos) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << "one line: " << r.err;
}

TEST(TokenizerCli, MalformedTokenizerIsExitOne) {
    testing::TempDir dir;
    std::string bad = dir.write("tokenizer.json", "{\"model\": ");
    CliRun r = tandem(dir, "tokenizer encode --tokenizer '" + bad + "'", dir.write("in", "x"));
    EXPECT_EQ(r.code, 1);
    EXPECT_NE(r.err.find(bad + ": not valid JSON"), std::string::npos) << r.err;
}

TEST(TokenizerCli, BadIdsAreExitOne) {
    testing::TempDir dir;
    std::string tok = trained(dir);
    CliRun r =
        tandem(dir, "tokenizer decode --tokenizer '" + tok + "'", dir.write("ids", "12 abc 7"));
    EXPECT_EQ(r.code, 1);
    EXPECT_NE(r.err.find("'abc"), std::string::npos) << r.err;
    r = tandem(dir, "tokenizer decode --tokenizer '" + tok + "'", dir.write("ids", "12 100000"));
    EXPECT_EQ(r.code, 1);
    EXPECT_NE(r.err.find("100000"), std::string::npos) << r.err;
}

TEST(TokenizerCli, UsageErrorsAreExitTwo) {
    testing::TempDir dir;
    EXPECT_EQ(tandem(dir, "tokenizer encode").code, 2);  // --tokenizer is required
    EXPECT_EQ(tandem(dir, "tokenizer frobnicate").code, 2);
    EXPECT_EQ(tandem(dir, "tokenizer train --input x --vocab-size 12 --out y").code, 2);
    EXPECT_EQ(tandem(dir, "prepare --tokenizer t --input x --out y --format xml").code, 2);
}

TEST(PrepareCli, WritesShardsMetaAndTokenizer) {
    testing::TempDir dir;
    std::string tok = trained(dir);
    std::string in = dir.write("data/corpus.txt", corpus());
    CliRun r =
        tandem(dir, "prepare --tokenizer '" + tok + "' --input '" + dir.file("data") +
                        "' --doc-separator % --val-fraction 0.1 --out '" + dir.file("out") + "'");
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_NE(r.err.find("train"), std::string::npos) << r.err;  // the summary line
    EXPECT_TRUE(std::filesystem::exists(dir.file("out/meta.json")));
    EXPECT_TRUE(std::filesystem::exists(dir.file("out/tokenizer.json")));
    EXPECT_TRUE(std::filesystem::exists(dir.file("out/train_000000.bin")));
    EXPECT_TRUE(std::filesystem::exists(dir.file("out/val_000000.bin")));
}

TEST(PrepareCli, NonUtf8JsonlIsExitOneNamingFileAndLine) {
    testing::TempDir dir;
    std::string tok = trained(dir);
    std::string in = dir.write("docs.jsonl", "{\"text\": \"a\"}\n{\"text\": \"\xc3\x28\"}\n");
    CliRun r = tandem(dir, "prepare --tokenizer '" + tok + "' --format jsonl --input '" + in +
                               "' --out '" + dir.file("out") + "'");
    EXPECT_EQ(r.code, 1);
    EXPECT_NE(r.err.find(in + ":2:"), std::string::npos) << r.err;
    EXPECT_FALSE(std::filesystem::exists(dir.file("out")));
}

}  // namespace
}  // namespace tandem

// `tandem tokenizer ...` and `tandem prepare` as a user runs them: the built binary, its exit
// codes (0 ok, 1 bad input, 2 bad usage) and its one-line errors on stderr.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <string>

#include "cli/cli_util.h"
#include "io/atomic_file.h"

namespace tandem {
namespace {

using testing::CliRun;
using testing::tandem;

std::string corpus() { return testing::fortune_corpus(); }
std::string trained(const testing::TempDir& dir) { return testing::trained_tokenizer(dir); }

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

// Six "licence texts" of 40 documents' worth of lines each, without separators.
std::string write_licences(const testing::TempDir& dir) {
    for (int f = 0; f < 6; ++f) {
        std::string text;
        for (int i = 0; i < 60; ++i)
            text += "Licence " + std::to_string(f) + ", clause " + std::to_string(i) +
                    ": the quick brown fox may copy the lazy dog's back.\n";
        dir.write("licences/" + std::to_string(f) + ".txt", text);
    }
    return dir.file("licences");
}

TEST(TokenizerCli, TrainReadsDirectoriesStdinAndJsonlLikePrepare) {
    testing::TempDir dir;
    const std::string licences = write_licences(dir);
    auto train = [&](const std::string& input, const std::string& out,
                     const std::string& stdin_file = "") {
        CliRun r = tandem(dir, "tokenizer train " + input + " --vocab-size 300 --out " + out,
                          stdin_file);
        EXPECT_EQ(r.code, 0) << input << ": " << r.err;
        return io::read_file(dir.file(out));
    };
    // A directory is read recursively and sorted, as prepare reads it.
    const std::string from_dir = train("--input " + testing::shell_quoted(licences), "dir.json");
    std::string all;
    for (int f = 0; f < 6; ++f) all += io::read_file(licences + "/" + std::to_string(f) + ".txt");
    EXPECT_EQ(train("--input -", "stdin.json", dir.write("all.txt", all)), from_dir)
        << "one stream of the same bytes (the files end in newlines) trains the same vocabulary";
    // Documents between % lines and the same documents as JSON Lines train the same vocabulary.
    std::string separated, jsonl;
    for (int i = 0; i < 200; ++i) {
        const std::string doc = "Document " + std::to_string(i) + " says hello to the world";
        separated += doc + "\n%\n";
        jsonl += "{\"body\": \"" + doc + "\\n\"}\n";
    }
    dir.write("docs.txt", separated);
    dir.write("docs.jsonl", jsonl);
    EXPECT_EQ(train("--input docs.txt --doc-separator %", "sep.json"),
              train("--input docs.jsonl --format jsonl --field body", "jsonl.json"));
    CliRun r = tandem(dir, "tokenizer train --input docs.jsonl --format jsonl --vocab-size 300 --out x");
    EXPECT_EQ(r.code, 1);
    EXPECT_NE(r.err.find("docs.jsonl:1: expected a JSON object with a string field \"text\""),
              std::string::npos)
        << r.err;
}

TEST(TokenizerCli, EncodeReadsFilesDirectoriesStdinAndJsonl) {
    testing::TempDir dir;
    std::string tok = trained(dir);
    dir.write("in/a.txt", "The quick fox");
    dir.write("in/b.txt", "the lazy dog");
    CliRun one = tandem(dir, "tokenizer encode --tokenizer " + tok + " --input in/a.txt");
    CliRun two = tandem(dir, "tokenizer encode --tokenizer " + tok + " --input in/b.txt");
    CliRun folder = tandem(dir, "tokenizer encode --tokenizer " + tok + " --input in");
    ASSERT_EQ(folder.code, 0) << folder.err;
    EXPECT_EQ(folder.out, one.out + two.out) << "one line of ids per document, files sorted";
    CliRun piped = tandem(dir, "tokenizer encode --tokenizer " + tok + " --input -", "in/a.txt");
    EXPECT_EQ(piped.out, one.out);
    dir.write("rows.jsonl", "{\"text\": \"The quick fox\"}\n{\"text\": \"the lazy dog\"}\n");
    CliRun rows = tandem(dir, "tokenizer encode --tokenizer " + tok +
                                  " --input rows.jsonl --format jsonl --field text");
    ASSERT_EQ(rows.code, 0) << rows.err;
    EXPECT_EQ(rows.out, folder.out);
}

TEST(TokenizerCli, TrainedTokenizerHasEndOfTextUnlessToldNot) {
    testing::TempDir dir;
    dir.write("corpus.txt", corpus());
    CliRun r = tandem(dir, "tokenizer train --input corpus.txt --vocab-size 300 --out tok.json");
    ASSERT_EQ(r.code, 0) << r.err;
    r = tandem(dir, "prepare --tokenizer tok.json --input corpus.txt --out data");
    EXPECT_EQ(r.code, 0) << "prepare takes a tokenizer trained with the defaults: " << r.err;
    CliRun enc = tandem(dir, "tokenizer encode --tokenizer tok.json", dir.write("eot", "<|endoftext|>"));
    EXPECT_EQ(enc.out, "299\n") << "one special token, the last id";

    // Given explicitly it is not added twice; other specials come after it.
    r = tandem(dir, "tokenizer train --input corpus.txt --vocab-size 300 --special '<|endoftext|>' "
                    "--special '<|pad|>' --out two.json");
    ASSERT_EQ(r.code, 0) << r.err;
    enc = tandem(dir, "tokenizer encode --tokenizer two.json", dir.write("both", "<|endoftext|><|pad|>"));
    EXPECT_EQ(enc.out, "298 299\n");

    r = tandem(dir, "tokenizer train --input corpus.txt --vocab-size 300 --no-default-special "
                    "--out bare.json");
    ASSERT_EQ(r.code, 0) << r.err;
    r = tandem(dir, "prepare --tokenizer bare.json --input corpus.txt --out data2");
    EXPECT_EQ(r.code, 1);
    EXPECT_NE(r.err.find("<|endoftext|>"), std::string::npos) << r.err;
}

TEST(PrepareCli, ReadsStandardInput) {
    testing::TempDir dir;
    std::string tok = trained(dir);
    std::string in = dir.write("corpus.txt", corpus());
    CliRun piped = tandem(dir, "prepare --tokenizer " + tok + " --input - --doc-separator % --out a", in);
    ASSERT_EQ(piped.code, 0) << piped.err;
    CliRun named = tandem(dir, "prepare --tokenizer " + tok + " --input corpus.txt --doc-separator % --out b");
    ASSERT_EQ(named.code, 0) << named.err;
    EXPECT_EQ(io::read_file(dir.file("a/train_000000.bin")), io::read_file(dir.file("b/train_000000.bin")));
    CliRun twice = tandem(dir, "prepare --tokenizer " + tok + " --input - --input - --out c", in);
    EXPECT_EQ(twice.code, 1);
    EXPECT_NE(twice.err.find("--input - (stdin) is given twice"), std::string::npos) << twice.err;
}

TEST(PrepareCli, OneFileHoldsOutTheEndOfItsStreamAndSaysSo) {
    testing::TempDir dir;
    std::string tok = trained(dir);
    dir.write("book.txt", corpus());
    CliRun r = tandem(dir, "prepare --tokenizer " + tok + " --input book.txt --out data");
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_NE(r.err.find("1 document is too few for --val-fraction 0.005"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("validation is the last "), std::string::npos) << r.err;
    EXPECT_TRUE(std::filesystem::exists(dir.file("data/val_000000.bin")));
}

}  // namespace
}  // namespace tandem

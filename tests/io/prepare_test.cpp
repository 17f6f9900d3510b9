#include "io/prepare.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/temp_dir.h"
#include "core/error.h"
#include "io/atomic_file.h"
#include "io/bpe_trainer.h"
#include "io/token_shards.h"
#include "io/tokenizer_files.h"

namespace tandem::io {
namespace {

namespace fs = std::filesystem;

// A small tokenizer trained on the documents themselves.
BpeTokenizer small_tokenizer(const testing::TempDir& dir, const std::string& text) {
    BpeTrainerOptions o;
    o.vocab_size = 400;
    o.specials = {"<|endoftext|>"};
    return BpeTokenizer(train_bpe({dir.write("train_corpus.txt", text)}, o));
}

std::string fortune_file(int first, int n) {
    std::string text;
    for (int i = first; i < first + n; ++i)
        text += "Fortune number " + std::to_string(i) + ": you will write tests.\n  -- tandem\n%\n";
    return text;
}

std::vector<int32_t> all_tokens(const std::string& dir, const std::string& split) {
    auto meta = nlohmann::json::parse(read_file(dir + "/meta.json"));
    std::vector<int32_t> ids;
    for (const auto& s : meta["shards"]) {
        if (s["split"] != split) continue;
        MappedShard shard(dir + "/" + s["file"].get<std::string>());
        shard.verify();
        std::vector<int32_t> part(shard.n_tokens());
        shard.copy_tokens(0, part);
        ids.insert(ids.end(), part.begin(), part.end());
    }
    return ids;
}

TEST(Prepare, SplitsOnSeparatorLinesAndPutsEotBeforeEachDocument) {
    testing::TempDir dir;
    std::string a = dir.write("in/a", fortune_file(0, 300)),
                b = dir.write("in/b", fortune_file(300, 300));
    BpeTokenizer tok = small_tokenizer(dir, fortune_file(0, 50));
    PrepareOptions o;
    o.inputs = {dir.file("in")};
    o.format.separator = "%";
    o.out_dir = dir.file("out");
    o.val_fraction = 0.1;
    o.shard_tokens = 3000;
    PrepareSummary s = prepare_shards(tok, o);
    EXPECT_EQ(s.n_documents[0] + s.n_documents[1], 600);
    EXPECT_GT(s.n_documents[1], 30);  // about 10% of 600
    EXPECT_LT(s.n_documents[1], 95);
    EXPECT_GT(s.n_shards[0], 1);

    // Decoding the train and val streams gives back exactly the documents, each after an EOT.
    std::string train_text, val_text;
    for (uint64_t i = 0; i < 600; ++i) {
        std::string doc = fortune_file(int(i), 1);
        doc = doc.substr(0, doc.size() - 2);  // without the "%\n" separator line
        (is_validation_document(i, 0.1) ? val_text : train_text) += "<|endoftext|>" + doc;
    }
    EXPECT_EQ(tok.decode(all_tokens(o.out_dir, "train")), train_text);
    EXPECT_EQ(tok.decode(all_tokens(o.out_dir, "val")), val_text);
    auto meta = nlohmann::json::parse(read_file(o.out_dir + "/meta.json"));
    EXPECT_EQ(meta["vocab_size"], tok.vocab_size());
    EXPECT_EQ(meta["n_tokens"]["train"], s.n_tokens[0]);
    EXPECT_EQ(load_tokenizer(o.out_dir).encode(train_text), tok.encode(train_text));
    EXPECT_FALSE(fs::exists(o.out_dir + ".partial"));
}

TEST(Prepare, ShardsAreByteIdenticalForAnyThreadCountAndBatchSize) {
    testing::TempDir dir;
    dir.write("in/a", fortune_file(0, 500));
    BpeTokenizer tok = small_tokenizer(dir, fortune_file(0, 50));
    auto run = [&](int threads, int64_t batch_bytes, const std::string& out) {
        PrepareOptions o;
        o.inputs = {dir.file("in")};
        o.format.separator = "%";
        o.out_dir = dir.file(out);
        o.batch_bytes = batch_bytes;
        o.n_threads = threads;
        prepare_shards(tok, o);
        return read_file(o.out_dir + "/train_000000.bin") +
               read_file(o.out_dir + "/val_000000.bin");
    };
    std::string one = run(1, 1 << 20, "one");
    EXPECT_EQ(run(3, 1000, "three"), one);
    EXPECT_EQ(run(2, 1 << 20, "one"), one);  // rerun over an earlier output replaces it
}

// The inputs of `o` prepared into "split" as given and into "whole" with no validation: the
// summary of the first, its train and val tokens, and the whole stream of the second.
struct SplitAndWhole {
    PrepareSummary summary;
    std::vector<int32_t> train, val, whole;
};
SplitAndWhole split_and_whole(const testing::TempDir& dir, const BpeTokenizer& tok,
                              PrepareOptions o) {
    o.out_dir = dir.file("split");
    SplitAndWhole r{prepare_shards(tok, o), {}, {}, {}};
    o.val_fraction = 0;
    o.out_dir = dir.file("whole");
    prepare_shards(tok, o);
    r.train = all_tokens(dir.file("split"), "train");
    r.val = all_tokens(dir.file("split"), "val");
    r.whole = all_tokens(dir.file("whole"), "train");
    return r;
}

TEST(Prepare, OneBigFileHoldsOutTheEndOfItsTokenStream) {
    // One document cannot be split by documents: validation is the stream's last tokens.
    testing::TempDir dir;
    dir.write("in/book.txt", fortune_file(0, 400));
    BpeTokenizer tok = small_tokenizer(dir, fortune_file(0, 50));
    PrepareOptions o;
    o.inputs = {dir.file("in")};
    auto [s, train, val, whole] = split_and_whole(dir, tok, o);  // the default fraction, 0.005
    const int64_t held = tail_validation_tokens(int64_t(whole.size()), 0.005);
    EXPECT_EQ(held, (int64_t(whole.size()) + 9) / 10) << "a tenth: fewer than 32768 tokens";
    EXPECT_EQ(int64_t(val.size()), held);
    EXPECT_EQ(s.n_tail_tokens, held);
    EXPECT_EQ(s.n_tokens[1], held);
    train.insert(train.end(), val.begin(), val.end());
    EXPECT_EQ(train, whole) << "train then val is the whole stream, cut once";
    auto meta = nlohmann::json::parse(read_file(dir.file("split/meta.json")));
    EXPECT_EQ(meta["val_split"], "tail_tokens");
    EXPECT_EQ(meta["n_tokens"]["val"], held);
}

TEST(Prepare, TokenSplitAcrossShardsKeepsEveryTokenOnce) {
    // Sixty documents and a fraction that draws none of them; every document (about 15
    // tokens) closes its own shard, so the held-out tail spans shards and the cut falls inside one.
    const double fraction = 0.001;
    for (uint64_t i = 0; i < 60; ++i) ASSERT_FALSE(is_validation_document(i, fraction));
    testing::TempDir dir;
    dir.write("in/a.txt", fortune_file(0, 60));
    BpeTokenizer tok = small_tokenizer(dir, fortune_file(0, 50));
    PrepareOptions o;
    o.inputs = {dir.file("in")};
    o.format.separator = "%";
    o.shard_tokens = 8;
    o.val_fraction = fraction;
    auto [s, train, val, whole] = split_and_whole(dir, tok, o);
    ASSERT_GT(s.n_tail_tokens, 2 * 15) << "the tail spans shards";
    EXPECT_EQ(int64_t(val.size()), s.n_tail_tokens);
    EXPECT_EQ(s.n_documents[1], 0);
    train.insert(train.end(), val.begin(), val.end());
    EXPECT_EQ(train, whole);
    auto meta = nlohmann::json::parse(read_file(dir.file("split/meta.json")));
    for (const auto& sh : meta["shards"])  // every listed shard exists; no stray shard remains
        EXPECT_TRUE(fs::exists(dir.file("split/" + sh["file"].get<std::string>()))) << sh;
    int64_t n_files = 0;
    for (const auto& e : fs::directory_iterator(dir.file("split")))
        n_files += e.path().extension() == ".bin";
    EXPECT_EQ(n_files, int64_t(meta["shards"].size()));
}

TEST(Prepare, TailValidationTokensKeepsTrainingDataAndHonoursTheFraction) {
    EXPECT_EQ(tail_validation_tokens(1000, 0), 0) << "a fraction of 0 holds out nothing";
    EXPECT_EQ(tail_validation_tokens(1, 0.5), 0) << "one token cannot be split";
    EXPECT_EQ(tail_validation_tokens(1000, 0.005), 100) << "at least a tenth";
    EXPECT_EQ(tail_validation_tokens(1000, 0.3), 300) << "a larger fraction wins";
    EXPECT_EQ(tail_validation_tokens(10'000'000, 0.001), kTailValidationTokens);
    EXPECT_EQ(tail_validation_tokens(2, 0.999), 1) << "never everything";
}

TEST(Prepare, JsonlWithInvalidUtf8NamesFileAndLine) {
    testing::TempDir dir;
    BpeTokenizer tok = small_tokenizer(dir, fortune_file(0, 20));
    std::string path =
        dir.write("docs.jsonl", "{\"text\": \"fine\"}\n{\"text\": \"bad \xff here\"}\n");
    PrepareOptions o;
    o.inputs = {path};
    o.format.format = InputFormat::Jsonl;
    o.out_dir = dir.file("out");
    try {
        prepare_shards(tok, o);
        FAIL() << "no error";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find(path + ":2:"), std::string::npos) << e.what();
    }
    EXPECT_FALSE(fs::exists(o.out_dir));
    EXPECT_FALSE(fs::exists(o.out_dir + ".partial"));
}

TEST(Prepare, JsonlWithoutTheFieldNamesTheField) {
    testing::TempDir dir;
    BpeTokenizer tok = small_tokenizer(dir, fortune_file(0, 20));
    PrepareOptions o;
    o.inputs = {dir.write("docs.jsonl", "{\"body\": \"x\"}\n")};
    o.format.format = InputFormat::Jsonl;
    o.out_dir = dir.file("out");
    try {
        prepare_shards(tok, o);
        FAIL() << "no error";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("\"text\""), std::string::npos) << e.what();
    }
}

TEST(Prepare, EmptyInputIsAnError) {
    testing::TempDir dir;
    BpeTokenizer tok = small_tokenizer(dir, fortune_file(0, 20));
    PrepareOptions o;
    o.inputs = {dir.write("empty.txt", "")};
    o.out_dir = dir.file("out");
    try {
        prepare_shards(tok, o);
        FAIL() << "no error";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("no documents"), std::string::npos) << e.what();
        EXPECT_NE(std::string(e.what()).find("empty.txt"), std::string::npos) << e.what();
    }
}

TEST(Prepare, RefusesToOverwriteADirectoryItDidNotWrite) {
    testing::TempDir dir;
    BpeTokenizer tok = small_tokenizer(dir, fortune_file(0, 20));
    dir.write("out/precious.txt", "keep me");
    PrepareOptions o;
    o.inputs = {dir.write("a.txt", "hello")};
    o.out_dir = dir.file("out");
    EXPECT_THROW(prepare_shards(tok, o), Error);
    EXPECT_EQ(read_file(dir.file("out/precious.txt")), "keep me");
}

}  // namespace
}  // namespace tandem::io

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

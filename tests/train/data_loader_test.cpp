#include "train/data_loader.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "common/temp_dir.h"
#include "core/error.h"
#include "io/atomic_file.h"
#include "io/bpe_trainer.h"
#include "io/prepare.h"
#include "io/token_shards.h"

namespace tandem::train {
namespace {

// A prepare-like output directory: train shards holding 0, 1, 2, ... (so every window can be
// traced back), one val shard, and meta.json.
struct Fixture {
    testing::TempDir dir;
    int64_t vocab = 5000;

    explicit Fixture(std::vector<int> train_sizes = {1000, 777, 1500}, int val_size = 300) {
        nlohmann::json shards = nlohmann::json::array();
        int32_t next = 0;
        auto write = [&](const std::string& name, const std::string& split, int n) {
            std::vector<int32_t> ids(static_cast<size_t>(n));
            for (auto& id : ids) id = next++ % int32_t(vocab);
            io::ShardWriter w(dir.file(name), vocab);
            w.append(ids);
            io::ShardHeader h = w.commit();
            shards.push_back({{"file", name}, {"split", split}, {"n_tokens", h.n_tokens}});
        };
        for (size_t i = 0; i < train_sizes.size(); ++i)
            write("train_00000" + std::to_string(i) + ".bin", "train", train_sizes[i]);
        write("val_000000.bin", "val", val_size);
        nlohmann::json meta = {{"vocab_size", vocab}, {"shards", shards}};
        dir.write("meta.json", meta.dump());
    }

    DataLoaderOptions options(Split split = Split::Train) const {
        DataLoaderOptions o;
        o.dir = dir.path();
        o.split = split;
        o.batch_size = 4;
        o.seq_len = 64;
        o.seed = 1234;
        return o;
    }
};

std::string error_of(const DataLoaderOptions& o) {
    try {
        DataLoader loader(o);
    } catch (const Error& e) {
        return e.what();
    }
    ADD_FAILURE() << "no error";
    return "";
}

TEST(DataLoader, WindowsAreContiguousAndEachEpochVisitsEveryWindowOnce) {
    Fixture f;
    auto o = f.options();
    o.batch_size = 5;
    DataLoader loader(o);
    // floor((n - 1) / 64) windows per shard: 15 + 12 + 23.
    ASSERT_EQ(loader.n_windows(), 50);
    std::set<int32_t> starts[2];
    for (int batch = 0; batch < 20; ++batch) {  // two epochs of 50 windows, 5 per batch
        std::vector<int32_t> tokens = loader.next_batch();
        for (int b = 0; b < 5; ++b) {
            const int32_t* row = tokens.data() + b * 65;
            for (int t = 1; t < 65; ++t) ASSERT_EQ(row[t], row[t - 1] + 1);
            starts[batch / 10].insert(row[0]);
        }
    }
    EXPECT_EQ(starts[0].size(), 50u);
    EXPECT_EQ(starts[1], starts[0]);
    EXPECT_EQ(loader.cursor(), (DataCursor{2, 0}));
}

TEST(DataLoader, OrderDependsOnSeedAndEpochOnly) {
    Fixture f;
    DataLoader a(f.options()), b(f.options());
    auto o = f.options();
    o.seed = 99;
    DataLoader c(o);
    std::vector<int32_t> first_a = a.next_batch();
    EXPECT_EQ(b.next_batch(), first_a);
    EXPECT_NE(c.next_batch(), first_a);
    // Epoch 1 is another order than epoch 0.
    std::vector<int32_t> e0, e1;
    DataLoader d(f.options());
    for (int i = 0; i < 12; ++i) e0.push_back(d.next_batch()[0]);
    d.set_cursor({1, 0});
    for (int i = 0; i < 12; ++i) e1.push_back(d.next_batch()[0]);
    EXPECT_NE(e0, e1);
}

TEST(DataLoader, RanksShareOneOrderAndSplitEachGlobalBatch) {
    Fixture f;
    auto o = f.options();
    o.batch_size = 5;  // 50 windows: a global batch of 10, five per epoch
    DataLoader whole(o);
    o.n_ranks = 2;
    DataLoader rank0(o);
    o.rank = 1;
    DataLoader rank1(o);
    for (int step = 0; step < 12; ++step) {  // crosses two epoch ends
        std::vector<int32_t> a = whole.next_batch(), b = whole.next_batch();
        EXPECT_EQ(rank0.next_batch(), a) << "step " << step;
        EXPECT_EQ(rank1.next_batch(), b) << "step " << step;
        EXPECT_EQ(rank0.cursor(), whole.cursor());
    }
}

TEST(DataLoader, ResumesExactlyFromASavedCursor) {
    Fixture f;
    DataLoader first(f.options());
    for (int i = 0; i < 17; ++i) first.next_batch();  // into the second epoch
    std::string saved = cursor_to_json(first.cursor());
    std::vector<std::vector<int32_t>> want;
    for (int i = 0; i < 20; ++i) want.push_back(first.next_batch());

    DataLoader resumed(f.options());
    resumed.set_cursor(cursor_from_json(saved));
    for (int i = 0; i < 20; ++i) EXPECT_EQ(resumed.next_batch(), want[size_t(i)]) << "batch " << i;
}

TEST(DataLoader, FixedValidationBatchesDoNotMove) {
    Fixture f;
    auto o = f.options(Split::Val);
    o.batch_size = 2;
    DataLoader val(o);
    ASSERT_EQ(val.n_windows(), 4);  // 299 / 64
    ASSERT_EQ(val.n_fixed_batches(), 2);
    std::vector<int32_t> batch(2 * 65);
    val.fixed_batch(1, batch);
    EXPECT_EQ(batch[0], 3277 + 2 * 64);  // val ids start after the 3277 train ids
    val.next_batch();
    std::vector<int32_t> again(2 * 65);
    val.fixed_batch(1, again);
    EXPECT_EQ(again, batch);
}

TEST(DataLoader, RefusesShardsFromAnotherVocabulary) {
    Fixture f;
    auto o = f.options();
    o.vocab_size = 151669;
    std::string what = error_of(o);
    EXPECT_NE(what.find("meta.json"), std::string::npos) << what;
    EXPECT_NE(what.find("151669"), std::string::npos) << what;

    // A shard whose own header disagrees with meta.json is named.
    io::ShardWriter w(f.dir.file("train_000001.bin"), 70000);
    w.append(std::vector<int32_t>(777, 1));
    w.commit();
    what = error_of(f.options());
    EXPECT_NE(what.find("train_000001.bin: made with a tokenizer of 70000"), std::string::npos)
        << what;
}

TEST(DataLoader, CorruptedOrTruncatedShardIsNamed) {
    Fixture f;
    std::string shard = f.dir.file("train_000002.bin");
    {
        std::fstream s(shard, std::ios::in | std::ios::out | std::ios::binary);
        s.seekp(64 + 100);
        s.put('\x55');
    }
    std::string what = error_of(f.options());
    EXPECT_NE(what.find(shard + ": checksum mismatch"), std::string::npos) << what;
    std::filesystem::resize_file(shard, 64 + 10);
    what = error_of(f.options());
    EXPECT_NE(what.find(shard + ": truncated"), std::string::npos) << what;
}

TEST(DataLoader, TooLittleDataForOneBatchSaysSo) {
    Fixture f({100}, 10);
    std::string what = error_of(f.options(Split::Val));
    EXPECT_NE(what.find("fewer than one batch"), std::string::npos) << what;
}

TEST(DataLoader, MissingMetaJsonIsNamed) {
    testing::TempDir dir;
    DataLoaderOptions o;
    o.dir = dir.path();
    std::string what = error_of(o);
    EXPECT_NE(what.find(dir.file("meta.json") + ": missing"), std::string::npos) << what;
}

TEST(DataLoader, ReadsWhatPrepareWrites) {
    testing::TempDir dir;
    std::string text;
    for (int i = 0; i < 300; ++i) text += "document " + std::to_string(i) + " says hello\n%\n";
    io::BpeTrainerOptions t;
    t.vocab_size = 300;
    t.specials = {"<|endoftext|>"};
    io::BpeTokenizer tok(io::train_bpe({dir.write("corpus.txt", text)}, t));
    io::PrepareOptions o;
    o.inputs = {dir.file("corpus.txt")};
    o.format.separator = "%";
    o.out_dir = dir.file("data");
    o.shard_tokens = 1000;
    io::PrepareSummary summary = io::prepare_shards(tok, o);

    DataLoaderOptions lo;
    lo.dir = o.out_dir;
    lo.batch_size = 2;
    lo.seq_len = 16;
    lo.vocab_size = tok.vocab_size();
    DataLoader loader(lo);
    EXPECT_EQ(loader.n_tokens(), summary.n_tokens[0]);
    std::vector<int32_t> batch = loader.next_batch();
    std::string row = tok.decode({batch.data(), 17});
    EXPECT_NE(row.find("says"), std::string::npos) << row;
}

TEST(DataCursor, RejectsMalformedJson) {
    EXPECT_EQ(cursor_from_json(R"({"epoch": 3, "position": 17})"), (DataCursor{3, 17}));
    EXPECT_THROW(cursor_from_json(R"({"epoch": 3})"), Error);
}

}  // namespace
}  // namespace tandem::train

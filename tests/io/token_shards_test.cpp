#include "io/token_shards.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "common/temp_dir.h"
#include "core/error.h"

namespace tandem::io {
namespace {

std::vector<int32_t> ramp(int n, int32_t scale) {
    std::vector<int32_t> ids(static_cast<size_t>(n));
    for (int i = 0; i < n; ++i) ids[size_t(i)] = (i * scale) % 70000;
    return ids;
}

std::string write_shard(const testing::TempDir& dir, const std::vector<int32_t>& ids,
                        int64_t vocab_size) {
    ShardWriter w(dir.file("s.bin"), vocab_size);
    w.append({ids.data(), ids.size() / 2});
    w.append({ids.data() + ids.size() / 2, ids.size() - ids.size() / 2});
    w.commit();
    return dir.file("s.bin");
}

std::string error_of_open(const std::string& path) {
    try {
        MappedShard s(path);
        s.verify();
    } catch (const Error& e) {
        return e.what();
    }
    ADD_FAILURE() << "no error for " << path;
    return "";
}

TEST(TokenShards, RoundTripsUint16AndUint32Tokens) {
    for (int64_t vocab : {50257, 151669}) {
        testing::TempDir dir;
        std::vector<int32_t> ids = ramp(1001, vocab > 65536 ? 97 : 13);
        for (auto& id : ids) id %= int32_t(vocab);
        std::string path = write_shard(dir, ids, vocab);
        MappedShard s(path);
        s.verify();
        EXPECT_EQ(s.header().token_bytes, vocab > 65536 ? 4u : 2u);
        EXPECT_EQ(s.header().vocab_size, uint64_t(vocab));
        EXPECT_EQ(std::filesystem::file_size(path), 64 + ids.size() * s.header().token_bytes);
        std::vector<int32_t> back(ids.size());
        s.copy_tokens(0, back);
        EXPECT_EQ(back, ids);
    }
}

TEST(TokenShards, TruncatedShardIsNamedWithTheSizes) {
    testing::TempDir dir;
    std::string path = write_shard(dir, ramp(100, 3), 50257);
    std::filesystem::resize_file(path, 64 + 150);
    std::string what = error_of_open(path);
    EXPECT_NE(what.find(path + ": truncated token shard"), std::string::npos) << what;
    EXPECT_NE(what.find("100 tokens"), std::string::npos) << what;
}

TEST(TokenShards, CorruptedPayloadFailsItsChecksum) {
    testing::TempDir dir;
    std::string path = write_shard(dir, ramp(100, 3), 50257);
    {
        std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
        f.seekp(64 + 10);
        f.put('\x7f');
    }
    std::string what = error_of_open(path);
    EXPECT_NE(what.find(path + ": checksum mismatch"), std::string::npos) << what;
}

TEST(TokenShards, ForeignFileIsNotTakenForAShard) {
    testing::TempDir dir;
    std::string path = dir.write("notes.txt", std::string(200, 'x'));
    EXPECT_NE(error_of_open(path).find("bad magic"), std::string::npos);
    std::string tiny = dir.write("tiny.bin", "TDM");
    EXPECT_NE(error_of_open(tiny).find("less than the 64-byte header"), std::string::npos);
}

TEST(TokenShards, AnUncommittedWriterLeavesNothingBehind) {
    testing::TempDir dir;
    {
        ShardWriter w(dir.file("s.bin"), 100);
        w.append(std::vector<int32_t>{1, 2, 3});
    }  // destroyed without commit, as when an error unwinds
    EXPECT_TRUE(std::filesystem::is_empty(dir.path()));
}

}  // namespace
}  // namespace tandem::io

// AtomicFile: all or nothing on disk, and the checksum it computes while writing.
#include "io/atomic_file.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>

#include "core/checksum.h"
#include "core/error.h"

namespace tandem::io {
namespace {

namespace fs = std::filesystem;

class AtomicFileTest : public ::testing::Test {
protected:
    void SetUp() override {
        dir_ = fs::temp_directory_path() / ("tandem_atomic_" + std::to_string(::getpid()));
        fs::create_directories(dir_);
    }
    void TearDown() override { fs::remove_all(dir_); }
    fs::path dir_;
};

TEST_F(AtomicFileTest, ChecksumIsThatOfTheBytesOnDisk) {
    const std::string path = (dir_ / "a.bin").string();
    AtomicFile file(path);
    file.write("hello, ");
    file.write("world");
    file.commit();
    EXPECT_EQ(read_file(path), "hello, world");
    EXPECT_EQ(file.checksum(), xxh3_64("hello, world", 12));
    EXPECT_EQ(write_file_atomic(path, "other"), xxh3_64("other", 5));
}

TEST_F(AtomicFileTest, WriteAtMakesTheChecksumUnknown) {
    AtomicFile file((dir_ / "b.bin").string());
    file.write("0000abcd");
    file.write_at(0, "12", 2);
    file.commit();
    EXPECT_EQ(read_file((dir_ / "b.bin").string()), "1200abcd");
    EXPECT_FALSE(file.checksum().has_value());
}

TEST_F(AtomicFileTest, UncommittedFileLeavesTheOldOneAndNoTemporary) {
    const std::string path = (dir_ / "c.txt").string();
    write_file_atomic(path, "old");
    {
        AtomicFile file(path);
        file.write("new, but never committed");
    }
    EXPECT_EQ(read_file(path), "old");
    EXPECT_EQ(std::distance(fs::directory_iterator(dir_), fs::directory_iterator{}), 1);
}

TEST_F(AtomicFileTest, DirectModeWritesExactlyTheBytesGivenAtAnySize) {
    // Sizes around the block size and the 8 MiB buffer: O_DIRECT pads the last block and the
    // padding must be cut off again.
    for (size_t size : {size_t(0), size_t(1), size_t(4095), size_t(4097), size_t(8 << 20) + 3, size_t(20 << 20) + 4096}) {
        std::string data(size, '\0');
        for (size_t i = 0; i < size; ++i) data[i] = char(i * 131 + size);
        const std::string path = (dir_ / ("direct_" + std::to_string(size))).string();
        AtomicFile file(path, WriteMode::Direct);
        for (size_t at = 0; at < size;) {  // in uneven pieces
            const size_t n = std::min(size - at, size_t(1000003));
            file.write(data.data() + at, n);
            at += n;
        }
        file.commit();
        EXPECT_EQ(fs::file_size(path), size);
        EXPECT_TRUE(read_file(path) == data) << size;
        EXPECT_EQ(file.checksum(), xxh3_64(data.data(), data.size()));
    }
}

}  // namespace
}  // namespace tandem::io

// AtomicFile: all or nothing on disk, and the checksum it computes while writing.
#include "io/atomic_file.h"

#include <gtest/gtest.h>

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

}  // namespace
}  // namespace tandem::io

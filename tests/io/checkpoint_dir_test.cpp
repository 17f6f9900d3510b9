#include "io/checkpoint_dir.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "core/error.h"
#include "io/atomic_file.h"

namespace tandem::io {
namespace {

namespace fs = std::filesystem;

class CheckpointDir : public ::testing::Test {
protected:
    void SetUp() override {
        root_ = fs::temp_directory_path() / ("tandem_ckpt_" + std::to_string(::getpid()) + "_" +
                                             ::testing::UnitTest::GetInstance()->current_test_info()->name());
        fs::remove_all(root_);
        fs::create_directories(root_);
    }
    void TearDown() override { fs::remove_all(root_); }

    std::string save(int64_t step, const std::string& payload) {
        CheckpointDirWriter writer(root_.string(), step);
        write_file_atomic(writer.file("model.bin"), payload);
        write_file_atomic(writer.file("state.json"), "{\"step\": " + std::to_string(step) + "}");
        return writer.commit();
    }
    fs::path root_;
};

TEST_F(CheckpointDir, CommittedDirectoryVerifiesAndIsListed) {
    const std::string dir = save(10, "weights");
    EXPECT_EQ(dir, (root_ / "step-10").string());
    EXPECT_NO_THROW(verify_checkpoint_dir(dir));
    EXPECT_TRUE(fs::exists(root_ / "step-10" / "MANIFEST.json"));
    auto all = list_checkpoints(root_.string());
    ASSERT_EQ(all.size(), 1u);
    EXPECT_EQ(all[0].step, 10);
}

TEST_F(CheckpointDir, UncommittedWriterLeavesNothingBehind) {
    {
        CheckpointDirWriter writer(root_.string(), 5);
        write_file_atomic(writer.file("model.bin"), "half");
    }
    EXPECT_TRUE(fs::is_empty(root_));
    EXPECT_FALSE(newest_valid_checkpoint(root_.string()).has_value());
}

TEST_F(CheckpointDir, TruncatedOrCorruptedFileIsNamedAndTheOlderCheckpointIsUsed) {
    save(10, "good weights");
    const std::string newest = save(20, "newer weights");
    fs::resize_file(fs::path(newest) / "model.bin", 3);
    try {
        verify_checkpoint_dir(newest);
        FAIL();
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("model.bin"), std::string::npos) << e.what();
        EXPECT_NE(std::string(e.what()).find("truncated"), std::string::npos) << e.what();
    }
    auto found = newest_valid_checkpoint(root_.string());
    ASSERT_TRUE(found.has_value());
    EXPECT_EQ(found->step, 10);

    // Same size, different bytes: the checksum catches it.
    std::ofstream(fs::path(newest) / "model.bin", std::ios::binary | std::ios::trunc) << "newer weighTs";
    try {
        verify_checkpoint_dir(newest);
        FAIL();
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("checksum"), std::string::npos) << e.what();
    }
}

TEST_F(CheckpointDir, MissingFileAndMissingManifestAreErrors) {
    const std::string dir = save(3, "w");
    fs::remove(fs::path(dir) / "state.json");
    EXPECT_THROW(verify_checkpoint_dir(dir), Error);
    fs::remove(fs::path(dir) / "MANIFEST.json");
    try {
        verify_checkpoint_dir(dir);
        FAIL();
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("MANIFEST.json"), std::string::npos);
    }
}

TEST_F(CheckpointDir, ResavingAStepReplacesIt) {
    save(7, "first");
    const std::string dir = save(7, "second");
    EXPECT_EQ(io::read_file((fs::path(dir) / "model.bin").string()), "second");
    EXPECT_EQ(list_checkpoints(root_.string()).size(), 1u);
}

}  // namespace
}  // namespace tandem::io

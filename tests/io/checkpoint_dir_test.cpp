#include "io/checkpoint_dir.h"

#include <gtest/gtest.h>

#include <sys/wait.h>
#include <unistd.h>

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

// A pid that belonged to a process which has ended.
pid_t dead_pid() {
    const pid_t pid = ::fork();
    if (pid == 0) ::_exit(0);
    ::waitpid(pid, nullptr, 0);
    return pid;
}

TEST_F(CheckpointDir, RecoveryRemovesDeadWritersTempDirsAndKeepsLiveOnes) {
    save(10, "good");
    const fs::path dead = root_ / ("step-20.tmp-" + std::to_string(dead_pid()));
    const fs::path live = root_ / ("step-30.tmp-" + std::to_string(::getppid()));
    fs::create_directories(dead);
    fs::create_directories(live);
    const auto done = recover_checkpoint_dirs(root_.string());
    ASSERT_EQ(done.size(), 1u);
    EXPECT_NE(done[0].find("step-20.tmp-"), std::string::npos) << done[0];
    EXPECT_FALSE(fs::exists(dead));
    EXPECT_TRUE(fs::exists(live));
    EXPECT_TRUE(fs::exists(root_ / "step-10"));
}

TEST_F(CheckpointDir, RecoveryMovesBackACheckpointCaughtBetweenTheRenamesOfAResave) {
    const std::string dir = save(40, "only copy");
    const fs::path aside = root_ / ("step-40.old-" + std::to_string(dead_pid()));
    fs::rename(dir, aside);  // the crash came after moving it aside, before the new one arrived
    EXPECT_FALSE(newest_valid_checkpoint(root_.string()).has_value());
    recover_checkpoint_dirs(root_.string());
    ASSERT_TRUE(newest_valid_checkpoint(root_.string()).has_value());
    EXPECT_EQ(io::read_file((fs::path(dir) / "model.bin").string()), "only copy");
}

TEST_F(CheckpointDir, PruneKeepsTheNewestAndMultiplesOfKeepEvery) {
    for (int64_t step = 100; step <= 700; step += 100) save(step, "w");
    const auto deleted = prune_checkpoints(root_.string(), 2, 300);
    EXPECT_EQ(deleted.size(), 4u);  // 100, 200, 400, 500
    std::vector<int64_t> kept;
    for (const auto& c : list_checkpoints(root_.string())) kept.push_back(c.step);
    EXPECT_EQ(kept, (std::vector<int64_t>{300, 600, 700}));
    EXPECT_TRUE(prune_checkpoints(root_.string(), 5, 0).empty());
}

}  // namespace
}  // namespace tandem::io

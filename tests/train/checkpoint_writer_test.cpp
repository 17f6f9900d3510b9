// The background checkpoint writer: what it writes loads back exactly, a failed write leaves no
// directory and is reported, retention deletes the right ones, and snapshots restore training.
#include "train/checkpoint_writer.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <thread>

#include "backend/registry.h"
#include "core/error.h"
#include "io/checkpoint_dir.h"

namespace tandem::train {
namespace {

namespace fs = std::filesystem;

class CheckpointWriterTest : public ::testing::Test {
protected:
    void SetUp() override {
        dir_ = (fs::temp_directory_path() / ("tandem_ckw_" + std::to_string(::getpid()) + "_" +
                                             ::testing::UnitTest::GetInstance()->current_test_info()->name()))
                   .string();
        fs::remove_all(dir_);
        model_.init(3);
        be().fill_zero(model_.grads());
    }
    void TearDown() override { fs::remove_all(dir_); }
    backend::Backend& be() { return model_.backend(); }

    std::shared_ptr<const CheckpointSnapshot> snapshot(int64_t step) {
        TrainingState state;
        state.step = step;
        state.cursor = {1, uint64_t(step) * 8};
        return std::make_shared<const CheckpointSnapshot>(take_snapshot(model_, optimizer_, state, "{}"));
    }

    std::string dir_;
    model::Model model_{model::preset_config("qwen3-tiny"), backend::get_backend("reference"), DType::F32, 1, 4};
    AdamW optimizer_{model_.backend(), model_.layout(), DType::F32, {}};
};

TEST_F(CheckpointWriterTest, AsyncWriteLoadsBackExactly) {
    optimizer_.step(model_.params(), model_.grads(), 0.01f);
    const auto snap = snapshot(7);
    CheckpointWriter writer({.parent = dir_});
    writer.submit(snap);
    const auto outcomes = writer.collect(true);
    ASSERT_EQ(outcomes.size(), 1u);
    ASSERT_TRUE(outcomes[0].error.empty()) << outcomes[0].error;
    EXPECT_EQ(outcomes[0].path, dir_ + "/step-7");
    EXPECT_NO_THROW(io::verify_checkpoint_dir(outcomes[0].path));

    model::Model loaded(model::preset_config("qwen3-tiny"), be(), DType::F32, 1, 4);
    AdamW loaded_opt(be(), loaded.layout(), DType::F32, {});
    load_checkpoint_weights(outcomes[0].path, loaded);
    const TrainingState state = load_checkpoint_state(outcomes[0].path, loaded_opt);
    EXPECT_EQ(state.step, 7);
    EXPECT_EQ(state.cursor.position, 56u);
    EXPECT_EQ(loaded_opt.step_count(), 1);
    for (const auto& e : model_.layout().entries()) EXPECT_EQ(loaded.save_param(e.name), model_.save_param(e.name)) << e.name;
}

TEST_F(CheckpointWriterTest, FailedWriteIsReportedAndLeavesNoDirectory) {
    CheckpointWriter writer({.parent = dir_, .after_file = [](const std::string& name, int64_t) {
                                 if (name == "optimizer.safetensors") throw Error("No space left on device");
                             }});
    writer.submit(snapshot(5));
    const auto outcomes = writer.collect(true);
    ASSERT_EQ(outcomes.size(), 1u);
    EXPECT_TRUE(outcomes[0].path.empty());
    EXPECT_NE(outcomes[0].error.find("No space left"), std::string::npos);
    EXPECT_TRUE(io::list_checkpoints(dir_).empty());
    EXPECT_TRUE(fs::is_empty(dir_));  // the temporary directory is gone too
}

TEST_F(CheckpointWriterTest, RetentionKeepsTheNewestAndEveryMth) {
    CheckpointWriter writer({.parent = dir_, .async = false, .keep_last = 2, .keep_every = 20});
    for (int64_t step = 10; step <= 60; step += 10) writer.submit(snapshot(step));
    for (const auto& o : writer.collect(true)) EXPECT_TRUE(o.error.empty()) << o.error;
    std::vector<int64_t> kept;
    for (const auto& c : io::list_checkpoints(dir_)) kept.push_back(c.step);
    EXPECT_EQ(kept, (std::vector<int64_t>{20, 40, 50, 60}));
}

TEST_F(CheckpointWriterTest, SubmitWaitsForTheWriteInFlight) {
    std::atomic<int> in_flight = 0, most = 0;
    CheckpointWriter writer({.parent = dir_, .after_file = [&](const std::string& name, int64_t) {
                                 if (name != "model.safetensors") return;
                                 most = std::max(most.load(), ++in_flight);
                                 std::this_thread::sleep_for(std::chrono::milliseconds(20));
                                 --in_flight;
                             }});
    for (int64_t step = 1; step <= 4; ++step) writer.submit(snapshot(step));
    EXPECT_EQ(writer.collect(true).size(), 4u);  // none was dropped
    EXPECT_EQ(most, 1);
}

TEST_F(CheckpointWriterTest, BackgroundTasksRunOnTheWriterThreadInTurnWithWrites) {
    CheckpointWriter writer({.parent = dir_});
    std::thread::id ran_on;
    auto buffer = std::make_shared<CheckpointSnapshot>();
    writer.run_in_background([&ran_on, buffer] {
        ran_on = std::this_thread::get_id();
        buffer->params.resize(1000);
    });
    writer.submit(snapshot(3));  // waits for the task
    EXPECT_EQ(writer.collect(true).size(), 1u);
    EXPECT_NE(ran_on, std::this_thread::get_id());
    EXPECT_EQ(buffer->params.size(), 1000u);
    EXPECT_EQ(buffer.use_count(), 1);  // the task let go of it
}

TEST_F(CheckpointWriterTest, RestoringASnapshotPutsTrainingBack) {
    const auto before = snapshot(1);
    std::vector<float> ones(model_.layout().n_params(), 1.0f);
    be().copy_to_device(model_.grads().data, ones.data(), ones.size() * 4);
    optimizer_.step(model_.params(), model_.grads(), 0.1f);
    restore_snapshot(*before, model_, optimizer_);
    EXPECT_EQ(optimizer_.step_count(), 0);
    const auto after = take_snapshot(model_, optimizer_, before->state, "{}");
    EXPECT_EQ(after.params, before->params);
    EXPECT_EQ(after.exp_avg, before->exp_avg);
    EXPECT_EQ(after.exp_avg_sq, before->exp_avg_sq);
}

}  // namespace
}  // namespace tandem::train

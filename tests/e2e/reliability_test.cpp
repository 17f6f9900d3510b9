// Training that survives: kill -9 at random moments and at chosen phases, damaged checkpoints,
// failed checkpoint writes, NaNs and spikes under each anomaly policy, hangs and crashes under
// the supervisor. The measure of success is always the same: the final weights and optimizer
// state are bitwise identical to an uninterrupted run's, or the run stops with a clear error and
// a valid last good checkpoint.
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>

#include "core/rng.h"
#include "e2e_util.h"
#include "io/checkpoint_dir.h"
#include "io/safetensors.h"

namespace tandem::testing {
namespace {

namespace fs = std::filesystem;

const char* kCorpus[] = {"/usr/share/games/fortunes/science", "/usr/share/games/fortunes/computers"};
constexpr int kSteps = 60;

// A tiny Llama with a checkpoint every 5 steps and an evaluation every 10.
const char* kConfig = R"({"model": {"preset": "tiny", "n_layers": 2, "d_model": 64, "n_heads": 4,
  "n_heads_kv": 2, "head_dim": 16, "d_ffn": 192, "max_seq_len": 64}, "batch_size": 8, "seq_len": 64,
  "steps": 60, "lr": 5e-3, "lr_min": 5e-4, "warmup_steps": 5, "eval_every": 10, "eval_batches": 2,
  "checkpoint_every": 5, "keep_checkpoints": 4, "log_every": 10, "seed": 7})";

class Reliability : public ::testing::Test {
protected:
    static void SetUpTestSuite() {
        for (const char* file : kCorpus)
            ASSERT_TRUE(fs::exists(file)) << file << " is missing: run scripts/setup (Debian package fortunes)";
        // One thread: these runs are tiny, and two OpenMP threads that spin-wait for each other
        // lose several times their speed whenever anything else needs a core (a parallel ctest,
        // a compiler), which would stretch the kill-timed runs for no gain.
        if (const char* old = std::getenv("OMP_NUM_THREADS")) old_threads_ = old;
        ::setenv("OMP_NUM_THREADS", "1", 1);
        dir_ = make_scratch_dir("reliability");
        const std::string inputs = std::string(" ") + kCorpus[0] + " " + kCorpus[1];
        RunResult tok = run_tandem("tokenizer train --input" + inputs + " --vocab-size 512 --special '<|endoftext|>' --out " +
                                   dir_ + "/tokenizer.json");
        ASSERT_EQ(tok.exit_code, 0) << tok.err;
        RunResult prep = run_tandem("prepare --tokenizer " + dir_ + "/tokenizer.json --input" + inputs +
                                    " --doc-separator % --val-fraction 0.05 --out " + dir_ + "/data");
        ASSERT_EQ(prep.exit_code, 0) << prep.err;
        std::ofstream(dir_ + "/config.json") << kConfig;
        const auto begin = std::chrono::steady_clock::now();
        RunResult straight = run_tandem(train_args("straight"));
        reference_seconds_ = std::chrono::duration<double>(std::chrono::steady_clock::now() - begin).count();
        ASSERT_EQ(straight.exit_code, 0) << straight.err;
    }
    static void TearDownTestSuite() {
        fs::remove_all(dir_);
        if (old_threads_) ::setenv("OMP_NUM_THREADS", old_threads_->c_str(), 1);
        else ::unsetenv("OMP_NUM_THREADS");
    }

    static std::string run_dir(const std::string& name) { return dir_ + "/" + name; }
    static std::string train_args(const std::string& run, const std::string& extra = "") {
        return "train --config " + dir_ + "/config.json --data " + dir_ + "/data --out " + run_dir(run) + " " + extra;
    }
    static std::string final_file(const std::string& run, const char* name) {
        return read_text(run_dir(run) + "/checkpoints/step-" + std::to_string(kSteps) + "/" + name);
    }
    // The run ended where the uninterrupted one did, bit for bit.
    static void expect_same_as_straight(const std::string& run) {
        for (const char* name : {"model.safetensors", "optimizer.safetensors"}) {
            const std::string mine = final_file(run, name);
            ASSERT_FALSE(mine.empty()) << run << " has no final " << name;
            EXPECT_TRUE(mine == final_file("straight", name)) << run << ": " << name << " differs from the straight run's";
        }
    }
    static std::vector<nlohmann::json> events(const std::string& run, const std::string& event) {
        std::vector<nlohmann::json> out;
        std::ifstream in(run_dir(run) + "/metrics.jsonl");
        for (std::string line; std::getline(in, line);) {
            auto record = nlohmann::json::parse(line);
            if (record.value("event", "") == event) out.push_back(record);
        }
        return out;
    }
    static bool weights_are_finite(const std::string& checkpoint) {
        io::SafetensorsReader reader(checkpoint + "/model.safetensors");
        for (const auto& t : reader.tensors()) {
            const float* v = static_cast<const float*>(t.data);
            for (int64_t i = 0; i < t.numel(); ++i)
                if (!std::isfinite(v[i])) return false;
        }
        return true;
    }

    static std::string dir_;
    static double reference_seconds_;
    static std::optional<std::string> old_threads_;
};
std::string Reliability::dir_;
double Reliability::reference_seconds_ = 0;
std::optional<std::string> Reliability::old_threads_;

TEST_F(Reliability, KilledAtTwelveRandomMomentsResumesBitwise) {
    // Kill moments drawn uniformly over the length of a whole run (start-up, steps, evaluations,
    // checkpoint writes alike), from a fixed seed. Every run that reaches its end must equal the
    // straight one; a run that ends before the twelfth kill is checked and a new one started.
    int kills = 0, finished = 0;
    for (uint64_t draw = 0; kills < 12; ++finished) {
        const std::string run = "random_kills_" + std::to_string(finished);
        for (;;) {
            ASSERT_LT(draw, 200u) << "the runs keep finishing before they are killed";
            const double at = 1.2 * reference_seconds_ * random_uniform({.seed = 2026}, draw++);
            int code = -1;
            if (run_tandem_killed_after(train_args(run, "--resume auto"), at, &code)) {
                ++kills;
                if (kills == 12) break;
                continue;
            }
            ASSERT_EQ(code, 0) << run << " failed after a kill";
            break;
        }
        if (kills == 12) {  // the last run was killed: let it finish
            RunResult last = run_tandem(train_args(run, "--resume auto"));
            ASSERT_EQ(last.exit_code, 0) << last.err;
        }
        expect_same_as_straight(run);
    }
}

TEST_F(Reliability, KilledInAStepInAnEvaluationAndInACheckpointWriteResumesBitwise) {
    EXPECT_FALSE(run_tandem(train_args("phase_kills", "--inject kill@7")).exit_code == 0);
    EXPECT_FALSE(run_tandem(train_args("phase_kills", "--resume auto --inject kill@20:eval")).exit_code == 0);
    EXPECT_FALSE(run_tandem(train_args("phase_kills", "--resume auto --inject kill@25:checkpoint")).exit_code == 0);
    // The checkpoint write of step 25 died half-way: its temporary directory is there, uncommitted.
    bool left_over = false;
    for (const auto& e : fs::directory_iterator(run_dir("phase_kills") + "/checkpoints"))
        left_over |= e.path().filename().string().rfind("step-25.tmp-", 0) == 0;
    EXPECT_TRUE(left_over);
    RunResult last = run_tandem(train_args("phase_kills", "--resume auto"));
    ASSERT_EQ(last.exit_code, 0) << last.err;
    EXPECT_NE(last.err.find("interrupted checkpoint write"), std::string::npos) << last.err;
    EXPECT_NE(last.err.find("resumed from " + run_dir("phase_kills") + "/checkpoints/step-20"), std::string::npos) << last.err;
    expect_same_as_straight("phase_kills");
}

TEST_F(Reliability, CorruptedAndTruncatedNewestCheckpointsAreSkippedWithTheFileNamed) {
    RunResult first = run_tandem(train_args("damaged", "--stop-after 40 --inject ckpt-truncate@35 --inject ckpt-corrupt@40"));
    ASSERT_EQ(first.exit_code, 0) << first.err;
    RunResult resumed = run_tandem(train_args("damaged", "--resume auto"));
    ASSERT_EQ(resumed.exit_code, 0) << resumed.err;
    const std::string checkpoints = run_dir("damaged") + "/checkpoints";
    EXPECT_NE(resumed.err.find(checkpoints + "/step-40/model.safetensors: checksum"), std::string::npos) << resumed.err;
    EXPECT_NE(resumed.err.find(checkpoints + "/step-35/model.safetensors: is "), std::string::npos) << resumed.err;
    EXPECT_NE(resumed.err.find("resumed from " + checkpoints + "/step-30"), std::string::npos) << resumed.err;
    expect_same_as_straight("damaged");
}

TEST_F(Reliability, AFailedCheckpointWriteIsRecordedAndTrainingGoesOn) {
    RunResult r = run_tandem(train_args("disk_full", "--inject ckpt-fail@55 keep_checkpoints=10"));
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.err.find("checkpoint of step 55 failed"), std::string::npos) << r.err;
    const auto failed = events("disk_full", "checkpoint_failed");
    ASSERT_EQ(failed.size(), 1u);
    EXPECT_EQ(failed[0]["step"], 55);
    EXPECT_NE(failed[0]["reason"].get<std::string>().find("No space left on device"), std::string::npos);
    EXPECT_FALSE(fs::exists(run_dir("disk_full") + "/checkpoints/step-55"));
    EXPECT_TRUE(fs::exists(run_dir("disk_full") + "/checkpoints/step-50"));
    expect_same_as_straight("disk_full");  // the failure touched nothing but the disk
}

TEST_F(Reliability, SkipPolicyDropsNanAndSpikeUpdatesAndRecordsThem) {
    RunResult r = run_tandem(train_args("skip", "--inject nan@12 --inject spike@30 --inject nan@33:loss"));
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const auto anomalies = events("skip", "anomaly");
    ASSERT_EQ(anomalies.size(), 3u);
    EXPECT_EQ(anomalies[0]["step"], 12);
    EXPECT_EQ(anomalies[0]["reason"], "gradient norm is NaN");
    EXPECT_EQ(anomalies[1]["step"], 30);
    EXPECT_NE(anomalies[1]["reason"].get<std::string>().find("loss spike"), std::string::npos);
    EXPECT_EQ(anomalies[2]["reason"], "loss is NaN");
    for (const auto& a : anomalies) EXPECT_EQ(a["action"], "skip");
    EXPECT_EQ(events("skip", "fault").size(), 3u);
    EXPECT_NE(r.err.find("warning: step 12: gradient norm is NaN; update skipped"), std::string::npos) << r.err;
    EXPECT_TRUE(weights_are_finite(run_dir("skip") + "/checkpoints/step-60"));
}

TEST_F(Reliability, ASpikeThatOutlivesItsBatchTakesTheClippedUpdateAndTheRunFinishes) {
    // Three spiking steps in a row (x10) stand for weights that spike on any batch: the first
    // update is refused, the next two are taken clipped; a NaN right after is still refused.
    RunResult r = run_tandem(train_args("outlived", "--inject spike@30:10 --inject spike@31:10 --inject spike@32:10 "
                                                    "--inject nan@33"));
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const auto anomalies = events("outlived", "anomaly");
    ASSERT_EQ(anomalies.size(), 4u);
    EXPECT_EQ(anomalies[0]["action"], "skip");
    EXPECT_EQ(anomalies[1]["action"], "clipped_update");
    EXPECT_EQ(anomalies[1]["in_a_row"], 2);
    EXPECT_EQ(anomalies[2]["action"], "clipped_update");
    EXPECT_EQ(anomalies[3]["action"], "skip");
    EXPECT_EQ(anomalies[3]["reason"], "gradient norm is NaN");
    EXPECT_NE(r.err.find("step 31: "), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("the spike outlived its batch (2 anomalies in a row), so the clipped update is taken"),
              std::string::npos)
        << r.err;
    EXPECT_TRUE(weights_are_finite(run_dir("outlived") + "/checkpoints/step-60"));
}

TEST_F(Reliability, HealthyRunsOfTenSeedsRaiseNoAnomaly) {
    // The guard must not cry wolf: ten seeds of the tiny run (lr 5e-3, small batches, so its
    // gradient norms wander by factors of two), every step from the 21st judged.
    for (int seed = 1; seed <= 10; ++seed) {
        const std::string run = "healthy-" + std::to_string(seed);
        RunResult r = run_tandem(train_args(run, "seed=" + std::to_string(seed) +
                                                     " steps=40 eval_every=0 checkpoint_every=40"));
        ASSERT_EQ(r.exit_code, 0) << r.err;
        for (const auto& a : events(run, "anomaly")) ADD_FAILURE() << "seed " << seed << ": " << a.dump();
    }
}

TEST_F(Reliability, RollbackPolicyRestoresTheLastGoodStateAndSkipsTheBadWindow) {
    RunResult r = run_tandem(
        train_args("rollback", "anomaly_policy=rollback --inject nan@23:model.layers.0.mlp.down_proj.weight"));
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const auto anomalies = events("rollback", "anomaly");
    ASSERT_EQ(anomalies.size(), 1u);
    EXPECT_EQ(anomalies[0]["action"], "rollback");
    EXPECT_EQ(anomalies[0]["to_step"], 20);
    EXPECT_EQ(anomalies[0]["skipped_batches"], 3);
    EXPECT_TRUE(weights_are_finite(run_dir("rollback") + "/checkpoints/step-60"));
}

TEST_F(Reliability, StopPolicySavesTheLastGoodStateAndStopsWithAClearError) {
    RunResult r = run_tandem(train_args("stop", "anomaly_policy=stop --inject nan@23"));
    EXPECT_EQ(r.exit_code, 1);
    const std::string saved = run_dir("stop") + "/checkpoints/step-22";
    EXPECT_NE(r.err.find("training stopped at step 23: gradient norm is NaN"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("saved as " + saved), std::string::npos) << r.err;
    EXPECT_NO_THROW(io::verify_checkpoint_dir(saved));
    EXPECT_TRUE(weights_are_finite(saved));
    ASSERT_EQ(events("stop", "anomaly").size(), 1u);
    EXPECT_EQ(events("stop", "anomaly")[0]["action"], "stop");
    RunResult resumed = run_tandem(train_args("stop", "--resume"));  // goes on past the bad batch
    EXPECT_EQ(resumed.exit_code, 0) << resumed.err;
}

TEST_F(Reliability, TooManyAnomaliesInARowStopAndNoNonFiniteWeightsAreEverSaved) {
    // A NaN inside the weights: skipping updates cannot cure it, so every step is an anomaly.
    RunResult r = run_tandem(train_args("poisoned", "--inject nan@23:model.norm.weight"));
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.err.find("5 anomalies in a row"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("the newest valid checkpoint is " + run_dir("poisoned") + "/checkpoints/step-20"),
              std::string::npos)
        << r.err;
    for (const auto& c : io::list_checkpoints(run_dir("poisoned") + "/checkpoints"))
        EXPECT_TRUE(weights_are_finite(c.path)) << c.path;
    EXPECT_FALSE(fs::exists(run_dir("poisoned") + "/checkpoints/step-25"));
}

TEST_F(Reliability, SupervisorRestartsAfterAKillAndAfterAHang) {
    // The first attempt dies at step 17; faults fire in the first attempt only.
    RunResult killed = run_tandem(train_args("supervised_kill", "--supervise 2 --inject kill@17"));
    ASSERT_EQ(killed.exit_code, 0) << killed.err;
    EXPECT_NE(killed.err.find("killed by signal 9"), std::string::npos) << killed.err;
    EXPECT_NE(killed.err.find("restart 1 of 2 with --resume auto"), std::string::npos) << killed.err;
    expect_same_as_straight("supervised_kill");

    // A step that hangs: the watchdog ends the trainer, the supervisor starts it again. The floor
    // of 3 s keeps a slow moment of a loaded machine (a checkpoint write) from passing for a hang.
    RunResult hung = run_tandem(train_args(
        "supervised_hang", "--supervise 1 watchdog_factor=20 watchdog_min_seconds=3 --inject hang@14:600"));
    ASSERT_EQ(hung.exit_code, 0) << hung.err;
    EXPECT_NE(hung.err.find("watchdog: step 14"), std::string::npos) << hung.err;
    EXPECT_NE(hung.err.find("stopped by its watchdog (exit 3)"), std::string::npos) << hung.err;
    expect_same_as_straight("supervised_hang");
}

TEST_F(Reliability, SupervisorDoesNotRestartAnErrorOfTheTrainersOwn) {
    RunResult r = run_tandem(train_args("supervised_bad", "--supervise 3 anomaly_policy=ignore"));
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.err.find("anomaly_policy 'ignore'"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("not restarting"), std::string::npos) << r.err;
    EXPECT_EQ(r.err.find("restart 1"), std::string::npos) << r.err;
}

TEST_F(Reliability, ResumeAutoStartsAfreshWhereThereIsNoCheckpointAndKeepsRetention) {
    RunResult r = run_tandem(train_args("auto_fresh", "--resume auto keep_checkpoints=2 keep_every=20"));
    ASSERT_EQ(r.exit_code, 0) << r.err;
    std::vector<int64_t> kept;
    for (const auto& c : io::list_checkpoints(run_dir("auto_fresh") + "/checkpoints")) kept.push_back(c.step);
    EXPECT_EQ(kept, (std::vector<int64_t>{20, 40, 55, 60}));
    expect_same_as_straight("auto_fresh");
    // A KEY=VALUE right after --resume is a setting, not the resume mode.
    RunResult longer = run_tandem("train --out " + run_dir("auto_fresh") + " --resume steps=65");
    ASSERT_EQ(longer.exit_code, 0) << longer.err;
    EXPECT_TRUE(fs::exists(run_dir("auto_fresh") + "/checkpoints/step-65"));
}

TEST_F(Reliability, BadFaultSpecsAndResumeValuesAreClearErrors) {
    RunResult bad_fault = run_tandem(train_args("bad", "--inject boom@3"));
    EXPECT_EQ(bad_fault.exit_code, 1);
    EXPECT_NE(bad_fault.err.find("fault 'boom@3': unknown kind 'boom'"), std::string::npos) << bad_fault.err;
    ::setenv("TANDEM_FAULTS", "kill@x", 1);
    RunResult bad_env = run_tandem(train_args("bad"));
    ::unsetenv("TANDEM_FAULTS");
    EXPECT_EQ(bad_env.exit_code, 1);
    EXPECT_NE(bad_env.err.find("fault 'kill@x'"), std::string::npos) << bad_env.err;
    RunResult bad_resume = run_tandem(train_args("bad", "--resume sometimes"));
    EXPECT_EQ(bad_resume.exit_code, 2);
    EXPECT_NE(bad_resume.err.find("--resume"), std::string::npos) << bad_resume.err;
    EXPECT_FALSE(fs::exists(run_dir("bad") + "/checkpoints"));
}

}  // namespace
}  // namespace tandem::testing

// `tandem task`, `eval` and `grpo` as a user runs them, on a tiny model trained for two steps on
// worked examples: held-out accuracy printed with its interval, a GRPO run writing its metrics,
// plot, samples and checkpoints, a resume that continues exactly, and refusals by name.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "cli/cli_util.h"
#include "io/atomic_file.h"

namespace tandem {
namespace {

using testing::CliRun;
using testing::tandem;

// The step records of a metrics.jsonl, without the timings (which differ from run to run).
std::vector<nlohmann::json> steps_of(const std::string& path) {
    std::vector<nlohmann::json> out;
    std::istringstream in(io::read_file(path));
    for (std::string line; std::getline(in, line);) {
        nlohmann::json r = nlohmann::json::parse(line);
        if (r.contains("event")) continue;
        for (const char* key : {"rollout_s", "update_s", "completions_per_s"}) r.erase(key);
        out.push_back(r);
    }
    return out;
}

constexpr const char* kGrpo =
    "grpo --model run --task addition:1 --prompts 2 --group 2 --max-tokens 12 --updates 2 --beta 0.04 "
    "--lr 1e-3 --checkpoint-every 1 --sample-every 1";

TEST(RlCli, EvalAndGrpoRunAndResumeExactly) {
    testing::TempDir dir;
    CliRun r = tandem(dir, "task --task addition:1 --n 300");
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_NE(r.out.find("</think><answer>"), std::string::npos);
    dir.write("examples.jsonl", r.out);
    ASSERT_EQ(tandem(dir, "tokenizer train --input examples.jsonl --format jsonl --vocab-size 300 --out tok.json").code, 0);
    ASSERT_EQ(tandem(dir, "prepare --tokenizer tok.json --input examples.jsonl --format jsonl --val-fraction 0.1 --out data").code, 0);
    r = tandem(dir, "train --data data --out run model=tiny steps=2 batch_size=2 seq_len=32 warmup_steps=1");
    ASSERT_EQ(r.code, 0) << r.err;

    r = tandem(dir, "eval --model run --task addition:1 --n 10 --max-tokens 12 --show 1");
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_NE(r.out.find("addition:1 held-out: "), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("/10 correct, accuracy "), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("(95% CI "), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("What is "), std::string::npos) << r.out;  // --show 1

    r = tandem(dir, std::string(kGrpo) + " --steps 2 --out g");
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_NE(r.out.find("step 2/2  reward "), std::string::npos) << r.out;
    std::vector<nlohmann::json> steps = steps_of(dir.file("g/metrics.jsonl"));
    ASSERT_EQ(steps.size(), 2u);
    for (const char* key : {"reward", "accuracy", "format", "completion_tokens", "kl", "clip_fraction", "entropy",
                            "loss", "grad_norm"})
        EXPECT_TRUE(steps[1].contains(key)) << key;
    EXPECT_GT(steps[1]["entropy"].get<double>(), 0);
    EXPECT_NE(io::read_file(dir.file("g/reward.svg")).find("mean reward"), std::string::npos);
    const std::string samples = io::read_file(dir.file("g/samples.jsonl"));
    EXPECT_EQ(std::count(samples.begin(), samples.end(), '\n'), 4);  // 2 steps x a group of 2
    EXPECT_TRUE(std::filesystem::exists(dir.file("g/checkpoints/step-2/model.safetensors")));

    // Resumed to step 3, it matches a run of 3 steps from the start, record for record, and what a
    // crash left past the checkpoint (a sample of step 3) is dropped.
    dir.write("g/samples.jsonl", samples + "{\"step\": 3, \"completion\": \"from before the crash\"}\n");
    r = tandem(dir, std::string(kGrpo) + " --steps 3 --out g --resume");
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_NE(r.err.find("resumed from g/checkpoints/step-2"), std::string::npos) << r.err;
    ASSERT_EQ(tandem(dir, std::string(kGrpo) + " --steps 3 --out straight").code, 0);
    EXPECT_EQ(steps_of(dir.file("g/metrics.jsonl")), steps_of(dir.file("straight/metrics.jsonl")));
    EXPECT_EQ(io::read_file(dir.file("g/samples.jsonl")), io::read_file(dir.file("straight/samples.jsonl")));

    // A GRPO run is a model the other commands load.
    r = tandem(dir, "eval --model g --task addition:1 --n 4 --max-tokens 8");
    EXPECT_EQ(r.code, 0) << r.err;

    // Refusals that name the culprit.
    r = tandem(dir, std::string(kGrpo) + " --steps 4 --out g --resume --temperature 0.5");
    EXPECT_EQ(r.code, 1);
    EXPECT_NE(r.err.find("resuming with temperature = 0.5 but the run was started with 1.0"), std::string::npos) << r.err;
    r = tandem(dir, std::string(kGrpo) + " --steps 4 --out g");
    EXPECT_EQ(r.code, 1);
    EXPECT_NE(r.err.find("pass --resume"), std::string::npos) << r.err;
}

TEST(RlCli, RefusesBadTasksAndGroupsByName) {
    testing::TempDir dir;
    CliRun r = tandem(dir, "grpo --model nowhere --out g --task subtraction");
    EXPECT_EQ(r.code, 1);
    EXPECT_NE(r.err.find("unknown task 'subtraction'"), std::string::npos) << r.err;
    r = tandem(dir, "eval --model nowhere --task countdown:9");
    EXPECT_EQ(r.code, 1);
    EXPECT_NE(r.err.find("countdown:9"), std::string::npos) << r.err;
    r = tandem(dir, "grpo --model nowhere --out g --group 1");
    EXPECT_EQ(r.code, 2);
    EXPECT_NE(r.err.find("--group"), std::string::npos) << r.err;
    r = tandem(dir, "grpo --model nowhere --out g --advantage ppo");
    EXPECT_EQ(r.code, 1);
    EXPECT_NE(r.err.find("advantage 'ppo'"), std::string::npos) << r.err;
    r = tandem(dir, "grpo --model nowhere --out g");
    EXPECT_EQ(r.code, 1);
    EXPECT_NE(r.err.find("nowhere"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace tandem

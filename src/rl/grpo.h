// `tandem grpo`: reinforcement learning with verifiable rewards. Each step draws prompts from a
// task's training split, samples G completions of each through the inference engine on the
// current weights, rewards them, turns the rewards into group-relative advantages, and takes
// several optimizer steps on that batch with the old policy's log-probabilities (grpo_loss.h)
// through the training step every other run uses (train::TrainStep). Checkpoints, resume and
// the anomaly guard are train/'s; metrics.jsonl, reward.svg and samples.jsonl are written here.
#pragma once

#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "io/bpe_tokenizer.h"
#include "model/weights.h"
#include "train/trainer.h"

namespace tandem::rl {

// The run's settings, saved as config.json in the run directory; a resumed run must be given
// the same ones (steps aside).
struct GrpoConfig {
    std::string task = "addition:3";
    int64_t steps = 100;
    int64_t prompts_per_step = 8;   // P
    int64_t group_size = 8;         // G: completions per prompt
    int64_t updates_per_batch = 1;  // optimizer steps on one batch of rollouts (mu)
    int64_t micro_batch = 16;       // rows per forward and backward
    int64_t max_tokens = 64;        // per completion
    double temperature = 1.0;
    double lr = 1e-5;
    int64_t warmup_steps = 0;
    double weight_decay = 0, beta1 = 0.9, beta2 = 0.99, grad_clip = 1.0;
    std::string advantage = "grpo";  // or "dr_grpo"
    double epsilon_low = 0.2, epsilon_high = 0.2;
    double beta = 0;                 // k3 KL to the starting model; > 0 loads it as the reference
    double format_weight = 0.1;
    uint64_t seed = 0;
    int64_t checkpoint_every = 50, keep_last = 3;
    int64_t sample_every = 10;       // samples.jsonl every this many steps (0: never)
    std::string device = "cpu";

    nlohmann::json to_json() const;
    static GrpoConfig from_json(const nlohmann::json& json);  // Error naming an unknown key
    void validate() const;  // Error naming the field, its value and its range
};

struct GrpoOptions {
    GrpoConfig config;
    std::string run_dir;
    train::ResumeMode resume = train::ResumeMode::Never;
    // The starting model (the policy's first weights, and the frozen reference when beta > 0)
    // and its tokenizer; the caller loads them (infer/ reads every model format).
    const model::Weights* initial = nullptr;
    const io::BpeModel* tokenizer = nullptr;
};

struct GrpoStepReport {
    int64_t step = 0, total_steps = 0;
    double reward = 0, accuracy = 0, completion_tokens = 0, kl = 0, clip_fraction = 0, entropy = 0;
    double loss = 0, grad_norm = 0, seconds = 0;
    std::optional<std::string> anomaly;  // an update the guard refused
};

struct GrpoEvents {
    std::function<void(const GrpoStepReport&)> on_step;
    std::function<void(const std::string&)> on_message;
};

struct GrpoResult {
    int64_t final_step = 0;
    std::string last_checkpoint;
};

GrpoResult run_grpo(const GrpoOptions& options, const GrpoEvents& events);

}  // namespace tandem::rl

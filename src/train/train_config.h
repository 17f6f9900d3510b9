// The configuration of a training run: one JSON object, every key overridable on the command
// line as KEY=VALUE. Unknown keys are errors that name the nearest known key.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace tandem::train {

struct TrainConfig {
    nlohmann::json model = "tiny";  // a preset name or an object {"family": ..., sizes...}
    // Start from these weights instead of a random init: any model `--model` accepts (a tandem
    // run, a Hugging Face directory, a .gguf file). Its config replaces `model`.
    std::string init;
    int64_t batch_size = 8;
    int64_t seq_len = 128;
    int64_t grad_accum = 1;
    int64_t steps = 1000;
    double lr = 1e-3;
    double lr_min = 1e-4;
    int64_t warmup_steps = 100;  // linear warm-up, then cosine decay to lr_min at `steps`
    double weight_decay = 0.1;   // matrix weights only; norms, biases, embeddings get none
    double beta1 = 0.9;
    double beta2 = 0.95;
    double eps = 1e-8;
    double grad_clip = 1.0;      // global norm; 0 disables clipping
    int64_t eval_every = 100;
    int64_t eval_batches = 8;
    int64_t checkpoint_every = 500;
    int64_t log_every = 10;      // plain log lines when stderr is not a terminal
    uint64_t seed = 1337;
    std::string device = "cpu";
    // Checkpoints: written on a background thread; the newest keep_checkpoints are kept, and
    // also every step that is a multiple of keep_every (0: none).
    bool async_checkpoints = true;
    int64_t keep_checkpoints = 3;
    int64_t keep_every = 0;
    // The anomaly guard (anomaly_guard.h): what to do about a NaN/Inf or spiking loss or
    // gradient norm (skip, rollback, stop), the window and thresholds of the spike test, and how
    // many refused updates in a row end the run.
    std::string anomaly_policy = "skip";
    int64_t anomaly_window = 100;
    double anomaly_zscore = 8.0;
    double anomaly_loss_factor = 1.5;  // a spike is also this many times the median loss
    double anomaly_norm_factor = 4.0;  // or gradient norm
    int64_t anomaly_max_consecutive = 5;
    // The watchdog (watchdog.h): a phase of a step taking longer than max(watchdog_min_seconds,
    // watchdog_factor × the median step) ends the process; 0 turns it off.
    double watchdog_factor = 50.0;
    double watchdog_min_seconds = 120.0;
    // Data parallel (`mpirun -np N tandem train`): the longest a rank waits for its peers in a
    // collective before the run ends with an error. Rank 0's checkpoint snapshot and evaluation
    // happen while the others wait, so it must exceed them.
    double dist_timeout = 120.0;
    // 1: ZeRO-1, AdamW's moments sharded across the ranks (zero_optimizer.h); 0: every rank
    // holds them all.
    int64_t zero = 0;
    // Slow links (train/grad_exchange.h): how gradients cross them (none, bf16, int8,
    // powersgd:R, with error feedback), and local steps: H steps on each rank's own gradients,
    // then DiLoCo's outer step (outer_lr, Nesterov outer_momentum) on the averaged change.
    std::string compress = "none";
    int64_t local_steps = 1;
    double outer_lr = 0.7;
    double outer_momentum = 0.9;

    nlohmann::json to_json() const;
    // Reads every key of `json`, rejecting unknown keys and values of the wrong type or range.
    static TrainConfig from_json(const nlohmann::json& json, const std::string& origin);
    void validate() const;  // throws Error naming the key and the value
};

// Applies "key=value" overrides to a config JSON object. Values are parsed as JSON when they
// parse (numbers, true, {"family": ...}), else taken as strings (model=llama-15m).
void apply_overrides(nlohmann::json& config, const std::vector<std::string>& overrides);

// The known key closest to `key` by edit distance, or "" when none is close.
std::string nearest_key(const std::string& key, const std::vector<std::string>& known);

}  // namespace tandem::train

// Held-out accuracy of a model on a task: n held-out problems sampled through the engine
// (batched; greedy unless told otherwise), each answer checked, and the accuracy's 95% Wilson
// score interval, which stays inside [0, 1] and is honest at 0 or n successes where the normal
// approximation collapses to a point.
#pragma once

#include <cstdint>
#include <vector>

#include "rl/rollout.h"

namespace tandem::rl {

struct Interval {
    double low = 0, high = 0;
};
// The Wilson score interval of successes / n at z standard deviations (1.96: 95%).
Interval wilson_interval(int64_t successes, int64_t n, double z = 1.96);

struct EvalOptions {
    int64_t n = 500;              // held-out problems 0 .. n-1
    uint64_t seed = 0;            // which held-out problems (and the sampling seed)
    int64_t max_tokens = 64;      // per completion
    float temperature = 0;        // 0: greedy
    double format_weight = 0.1;   // see RolloutOptions
};

struct EvalResult {
    int64_t n = 0, n_correct = 0, n_formatted = 0;
    double accuracy = 0;
    Interval interval;               // of the accuracy, 95%
    double mean_completion_tokens = 0;
    std::vector<Problem> problems;
    std::vector<Rollout> rollouts;   // [n] in problem order
};

EvalResult evaluate_task(infer::Engine& engine, const io::BpeTokenizer& tokenizer, const Task& task,
                         const EvalOptions& options);

}  // namespace tandem::rl

// Held-out evaluation: problems, rollouts, counts and the Wilson interval.
#include "rl/evaluate.h"

#include <cmath>

#include "core/error.h"

namespace tandem::rl {

Interval wilson_interval(int64_t successes, int64_t n, double z) {
    if (n <= 0) return {0, 1};
    const double p = double(successes) / double(n), z2n = z * z / double(n);
    const double centre = (p + z2n / 2) / (1 + z2n);
    const double half = z * std::sqrt(p * (1 - p) / double(n) + z2n / (4 * double(n))) / (1 + z2n);
    return {std::max(0.0, centre - half), std::min(1.0, centre + half)};
}

EvalResult evaluate_task(infer::Engine& engine, const io::BpeTokenizer& tokenizer, const Task& task,
                         const EvalOptions& options) {
    if (options.n < 1) throw Error("eval: --n ", options.n, " must be at least 1");
    EvalResult out;
    for (int64_t i = 0; i < options.n; ++i) out.problems.push_back(task.problem(Split::HeldOut, options.seed, i));
    RolloutOptions rollout;
    rollout.max_tokens = options.max_tokens;
    rollout.format_weight = options.format_weight;
    rollout.sampling.temperature = options.temperature;
    rollout.sampling.seed = options.seed;
    out.rollouts = sample_rollouts(engine, tokenizer, task, out.problems, rollout);
    out.n = options.n;
    double tokens = 0;
    for (const Rollout& r : out.rollouts) {
        out.n_correct += r.reward.correct > 0;
        out.n_formatted += r.reward.format > 0;
        tokens += double(r.completion.size());
    }
    out.accuracy = double(out.n_correct) / double(out.n);
    out.interval = wilson_interval(out.n_correct, out.n);
    out.mean_completion_tokens = tokens / double(out.n);
    return out;
}

}  // namespace tandem::rl

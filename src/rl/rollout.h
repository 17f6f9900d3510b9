// Rollouts through tandem's own inference engine: each problem's prompt sampled G times
// (one request with n = G, so the sequences of a group draw from one seed with their own
// SampleKey.sequence), every request submitted at once and run with continuous batching, each
// completion decoded and rewarded. The engine reads the weights it is given in place: built over
// a training Model's weights, it samples the current policy with no copy. Reference-model
// log-probabilities of finished rollouts come from a PagedForward too (no gradients anywhere).
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "infer/engine.h"
#include "infer/paged_forward.h"
#include "io/bpe_tokenizer.h"
#include "model/weights.h"
#include "rl/task.h"

namespace tandem::rl {

// A PagedForward and an Engine over `weights`, sized for n_seqs sequences of n_positions each.
struct RolloutEngine {
    std::unique_ptr<infer::PagedForward> model;
    std::unique_ptr<infer::Engine> engine;

    // weights and tokenizer must outlive it.
    RolloutEngine(const model::Weights& weights, const io::BpeTokenizer& tokenizer, int64_t n_seqs,
                  int64_t n_positions);
};

struct RolloutOptions {
    int64_t group_size = 1;  // completions per prompt
    int64_t max_tokens = 64;
    infer::SamplingParams sampling;  // temperature 0: greedy; seed: see sample_rollouts
    double format_weight = 0.1;      // Reward::total = correct + format_weight * format
};

struct Rollout {
    int64_t problem = 0;               // index into the problems
    std::vector<int32_t> prompt;       // the encoded prompt
    std::vector<int32_t> completion;   // generated ids, and the stop id when one ended it
    std::string text;                  // the completion's text (no stop token)
    infer::FinishReason finish = infer::FinishReason::None;
    Reward reward;
};

// problems.size() x group_size rollouts, those of problem i at [i * G, (i + 1) * G). Problem i
// draws with seed options.sampling.seed + i. The engine must have no other work. Throws Error
// naming the problem whose prompt and max_tokens do not fit the model's context.
std::vector<Rollout> sample_rollouts(infer::Engine& engine, const io::BpeTokenizer& tokenizer,
                                     const Task& task, std::span<const Problem> problems,
                                     const RolloutOptions& options);

// log p(completion token) under `model` for every completion token of every rollout (in order,
// the rollouts' completions concatenated). One rollout per step: the model must take
// prompt + completion rows in a step and hold them in its pages.
std::vector<double> completion_logprobs(infer::PagedForward& model, std::span<const Rollout> rollouts);

}  // namespace tandem::rl

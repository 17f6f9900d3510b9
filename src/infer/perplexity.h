// Perplexity of a model over a text's token ids: the ids are cut into windows of `ctx` tokens,
// each window runs through a StepModel as one sequence (in chunks of at most a step's rows, its
// keys and values in pages 0..k), and every token after a window's first is scored by the
// log-softmax of the logits before it. Tokenizing the text and reading files are the caller's.
#pragma once

#include <cstdint>
#include <functional>
#include <span>

#include "infer/step_model.h"

namespace tandem::infer {

// Windows are at most this long unless asked for more: a model's full context (40,960 for Qwen3)
// would make one window of most texts and a quadratic attention cost for little gain.
inline constexpr int64_t kPerplexityCtxCap = 1024;

struct PerplexityOptions {
    int64_t ctx = 0;    // tokens per window, 2 to the model's context; 0: default_ctx
    int64_t chunk = 0;  // rows per step, at most the model's max_tokens_per_step; 0: that
};

struct PerplexityProgress {
    int64_t n_done = 0;   // tokens run so far
    int64_t n_total = 0;  // tokens of the text
};

struct PerplexityResult {
    int64_t n_tokens = 0;   // tokens predicted: every token but each window's first
    double nll = 0;         // mean negative log-likelihood per predicted token (nats)
    double perplexity = 0;  // exp(nll)
};

// A model's context (max_positions) capped at kPerplexityCtxCap.
int64_t default_ctx(int64_t max_positions);

// Throws Error naming the value and the range: fewer than 2 tokens, a ctx outside
// [2, max_positions], a chunk outside [1, max_tokens_per_step], too few pages for one window,
// or a token id outside the vocabulary (from the model's run).
PerplexityResult perplexity(StepModel& model, std::span<const int32_t> tokens,
                            const PerplexityOptions& options = {},
                            const std::function<void(const PerplexityProgress&)>& progress = {});

// -log softmax(logits)[target], in double: the score of one predicted token.
double token_nll(std::span<const float> logits, int32_t target);

}  // namespace tandem::infer

// Choosing the next token from logits: greedy at temperature 0, else temperature, top-k and
// top-p (nucleus) filtering and a draw. The draw is Philox keyed by (seed, Sampling, position),
// so a seed gives the same text on every backend and every run.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace tandem::infer {

struct SamplingParams {
    float temperature = 1.0f;  // 0: greedy
    int64_t top_k = 0;         // 0: no limit
    float top_p = 1.0f;        // 1: no nucleus cut
    uint64_t seed = 0;

    void validate() const;  // throws Error naming the option and its range
};

class Sampler {
public:
    explicit Sampler(SamplingParams params) : params_(params) { params_.validate(); }

    // `position` is the index of the token being chosen (it keys the random draw). Ties in
    // greedy mode go to the lowest id.
    int32_t sample(std::span<const float> logits, int64_t position);

private:
    SamplingParams params_;
    std::vector<std::pair<float, int32_t>> candidates_;  // reused between calls
};

}  // namespace tandem::infer

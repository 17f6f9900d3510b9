// Choosing the next token from logits, per request: logit bias, then the repetition penalty
// (Hugging Face's: over prompt and generated tokens) and the presence and frequency penalties
// (OpenAI's: over generated tokens), then greedy at temperature 0, else temperature, top-k,
// top-p (nucleus), min-p and a draw. The draw is Philox keyed by (seed, sequence, position), so
// n samples of one prompt with one seed differ from each other and every run repeats them, on
// every backend.
#pragma once

#include <cstdint>
#include <span>
#include <utility>
#include <vector>

namespace tandem::infer {

struct SamplingParams {
    float temperature = 1.0f;         // 0: greedy
    int64_t top_k = 0;                // 0: no limit
    float top_p = 1.0f;               // 1: no nucleus cut
    float min_p = 0.0f;               // 0: off; else drop tokens below min_p * p(most likely)
    float repetition_penalty = 1.0f;  // 1: off; > 0
    float presence_penalty = 0.0f;    // in [-2, 2]
    float frequency_penalty = 0.0f;   // in [-2, 2]
    std::vector<std::pair<int32_t, float>> logit_bias;  // (token id, added to its logit)
    uint64_t seed = 0;
    bool logprobs = false;    // report the chosen token's log-probability
    int64_t top_logprobs = 0;  // and those of the n most likely tokens, n in [0, 20]

    // Throws Error naming the option, its value and its range; vocab_size bounds logit_bias ids.
    void validate(int64_t vocab_size) const;
};

// The tokens a penalty looks at.
struct TokenHistory {
    std::span<const int32_t> prompt;
    std::span<const int32_t> generated;
};

// What keys one draw: the request's seed, which of its sequences (0 .. n-1), and the position
// of the token being chosen.
struct SampleKey {
    uint64_t sequence = 0;
    int64_t position = 0;
};

struct TokenLogprob {
    int32_t id = 0;
    float logprob = 0;  // log-softmax of the model's logits (before bias, penalties, temperature)
};

struct SampledToken {
    int32_t id = 0;
    float logprob = 0;              // set when params.logprobs
    std::vector<TokenLogprob> top;  // params.top_logprobs of them, most likely first
};

class Sampler {
public:
    // params must be valid (validate() first).
    explicit Sampler(SamplingParams params);

    // Ties in greedy mode go to the lowest id. `logits` may be longer than the tokenizer's
    // vocabulary only if the caller trims it first: every id of the span can be chosen.
    SampledToken sample(std::span<const float> logits, const SampleKey& key,
                        const TokenHistory& history = {});
    const SamplingParams& params() const { return params_; }

private:
    SamplingParams params_;
    // The vocabulary-sized scratch of a draw (about 1.8 MB for 151,936 words) is kept per thread
    // in sampler.cpp rather than here: an engine holds one Sampler per live sequence.
};

}  // namespace tandem::infer

// Do two backends run a model the same way? Every backend decodes the same token sequence (the
// first backend's greedy continuation of each prompt, fed to the others token by token), and
// each pair is compared position by position: the largest logit difference, top-1 agreement,
// and how many greedy tokens both would have chosen. This is how a new chip's backend is
// admitted: it passes the conformance suite and `tandem verify` against reference.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "infer/model_source.h"
#include "io/bpe_tokenizer.h"

namespace tandem::infer {

struct VerifyOptions {
    std::vector<std::string> backends;  // at least two, each available here
    std::vector<std::string> prompts;
    int64_t n_tokens = 64;   // greedy tokens after each prompt
    double tolerance = 1e-3;  // on |logit difference| / max(1, max |logit|), f32
    // Weights stored as --quant asks on every backend (load_weights_quantized); unset: f32.
    std::optional<DType> quant;
};

struct PairReport {
    std::string a, b;
    double max_diff = 0;      // largest |logit_a - logit_b|
    double max_relative = 0;  // largest |difference| / max(1, max |logit| of the row)
    int64_t top1_agree = 0, n_positions = 0;
    int64_t greedy_agree = 0, n_greedy = 0;  // leading tokens both choose, summed over prompts
    int64_t near_ties = 0;  // top-1 disagreements where a's top two are closer than the tolerance
    bool is_ok = true;
};

struct VerifyReport {
    std::vector<PairReport> pairs;
    bool is_ok() const;
};

// The logits two backends gave before each token of one shared sequence `seq` (a's greedy
// choices when a ran first), added into `report`.
void compare_logits(PairReport& report, const std::vector<std::vector<float>>& a,
                    const std::vector<std::vector<float>>& b, const std::vector<int32_t>& seq,
                    double tolerance);

// Throws Error for fewer than two backends, an unknown or unavailable one, no prompts, or a
// prompt that leaves no room in the context.
VerifyReport verify_backends(const ModelSource& source, const io::BpeTokenizer& tokenizer,
                             const VerifyOptions& options,
                             const std::function<void(const std::string&)>& on_progress = {});

}  // namespace tandem::infer

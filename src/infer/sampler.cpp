// Greedy, temperature, top-k and top-p sampling over host logits.
#include "infer/sampler.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "core/rng.h"

namespace tandem::infer {

void SamplingParams::validate() const {
    if (!(temperature >= 0) || !std::isfinite(temperature))
        throw Error("--temperature must be a finite number >= 0, got ", temperature);
    if (top_k < 0) throw Error("--top-k must be >= 0 (0 means no limit), got ", top_k);
    if (!(top_p > 0 && top_p <= 1)) throw Error("--top-p must be in (0, 1], got ", top_p);
}

int32_t Sampler::sample(std::span<const float> logits, int64_t position) {
    TANDEM_ASSERT(!logits.empty());
    if (params_.temperature == 0) {
        return static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
    }
    // Candidates sorted by logit, highest first (ties by id, so the order is total).
    candidates_.clear();
    for (size_t i = 0; i < logits.size(); ++i) candidates_.emplace_back(logits[i], static_cast<int32_t>(i));
    const auto by_logit = [](const auto& a, const auto& b) {
        return a.first != b.first ? a.first > b.first : a.second < b.second;
    };
    size_t keep = candidates_.size();
    if (params_.top_k > 0 && static_cast<size_t>(params_.top_k) < keep) {
        keep = static_cast<size_t>(params_.top_k);
        std::partial_sort(candidates_.begin(), candidates_.begin() + keep, candidates_.end(), by_logit);
    } else {
        std::sort(candidates_.begin(), candidates_.end(), by_logit);
    }

    // Softmax at the temperature, in double: the probabilities of the kept candidates.
    std::vector<double> probs(keep);
    const double max_logit = candidates_[0].first;
    double total = 0;
    for (size_t i = 0; i < keep; ++i) {
        probs[i] = std::exp((candidates_[i].first - max_logit) / params_.temperature);
        total += probs[i];
    }
    // Nucleus: the smallest prefix whose probability reaches top_p (at least one token).
    if (params_.top_p < 1) {
        double cumulative = 0;
        size_t cut = keep;
        for (size_t i = 0; i < keep; ++i) {
            cumulative += probs[i] / total;
            if (cumulative >= params_.top_p) {
                cut = i + 1;
                break;
            }
        }
        keep = cut;
        total = 0;
        for (size_t i = 0; i < keep; ++i) total += probs[i];
    }
    const RngKey key{params_.seed, RngPurpose::Sampling, 0, 0};
    const double u = random_uniform(key, static_cast<uint64_t>(position)) * total;
    double cumulative = 0;
    for (size_t i = 0; i < keep; ++i) {
        cumulative += probs[i];
        if (u < cumulative) return candidates_[i].second;
    }
    return candidates_[keep - 1].second;  // u rounded up to the total
}

}  // namespace tandem::infer

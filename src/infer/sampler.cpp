// The per-request sampler: logit adjustments (bias, then penalties), greedy or a filtered draw,
// and log-probabilities of the raw logits. Nothing here sorts the whole vocabulary: top-k selects
// partially, top-p sums a histogram of the weights and sorts only the bucket it cuts, and greedy
// is one pass. Validating the options is here too.
#include "infer/sampler.h"

#include <algorithm>
#include <array>
#include <bit>
#include <cmath>

#include "core/error.h"
#include "core/rng.h"

namespace tandem::infer {

void SamplingParams::validate(int64_t vocab_size) const {
    TANDEM_ASSERT(vocab_size > 0, vocab_size);
    const auto in = [](double v, double lo, double hi) { return v >= lo && v <= hi; };  // NaN: no
    if (!(temperature >= 0) || !std::isfinite(temperature))
        throw Error("sampling option temperature is ", temperature,
                    " but must be a finite number >= 0 (0 is greedy)");
    if (top_k < 0)
        throw Error("sampling option top_k is ", top_k, " but must be >= 0 (0: no limit)");
    if (!(top_p > 0 && top_p <= 1))
        throw Error("sampling option top_p is ", top_p, " but must be in (0, 1] (1: no cut)");
    if (!in(min_p, 0, 1))
        throw Error("sampling option min_p is ", min_p, " but must be in [0, 1] (0: off)");
    if (!(repetition_penalty > 0) || !std::isfinite(repetition_penalty))
        throw Error("sampling option repetition_penalty is ", repetition_penalty,
                    " but must be a finite number > 0 (1: off)");
    if (!in(presence_penalty, -2, 2))
        throw Error("sampling option presence_penalty is ", presence_penalty,
                    " but must be in [-2, 2]");
    if (!in(frequency_penalty, -2, 2))
        throw Error("sampling option frequency_penalty is ", frequency_penalty,
                    " but must be in [-2, 2]");
    if (top_logprobs < 0 || top_logprobs > 20)
        throw Error("sampling option top_logprobs is ", top_logprobs, " but must be in [0, 20]");
    std::vector<int32_t> ids;
    for (const auto& [id, bias] : logit_bias) {
        if (id < 0 || id >= vocab_size)
            throw Error("sampling option logit_bias names token ", id, " but token ids are in [0, ",
                        vocab_size, ")");
        if (!in(bias, -100, 100))
            throw Error("sampling option logit_bias gives token ", id, " the bias ", bias,
                        " but a bias must be in [-100, 100]");
        ids.push_back(id);
    }
    // A repeated id would add its biases up past the range checked above.
    std::sort(ids.begin(), ids.end());
    if (auto twice = std::adjacent_find(ids.begin(), ids.end()); twice != ids.end())
        throw Error("sampling option logit_bias names token ", *twice,
                    " twice (give each token one bias)");
}

Sampler::Sampler(SamplingParams params) : params_(std::move(params)) {}

namespace {

// The total order every selection uses: larger value first, then lower id. Making it total keeps
// the kept set and the walk of the draw independent of the standard library's algorithms. A
// function object rather than a function, so that the sorts inline it.
using Candidate = std::pair<float, int32_t>;  // (logit or weight, token id)
constexpr auto before = [](const Candidate& a, const Candidate& b) {
    return a.first != b.first ? a.first > b.first : a.second < b.second;
};

// The n largest of `values` in the order `before`, by one pass that keeps a sorted list: after
// the first few hundred values almost every value is below the list's last and costs one
// comparison. For top-k with a small k and for the top log-probabilities.
void select_largest(std::span<const float> values, size_t n, std::vector<Candidate>& out) {
    out.clear();
    if (n == 0) return;
    out.reserve(n + 1);
    for (size_t i = 0; i < values.size(); ++i) {
        // Ids grow through the scan, so a value equal to the last one's comes after it.
        if (out.size() == n && !(values[i] > out.back().first)) continue;
        const Candidate c{values[i], static_cast<int32_t>(i)};
        out.insert(std::upper_bound(out.begin(), out.end(), c, before), c);
        if (out.size() > n) out.pop_back();
    }
}

// The lowest id among the largest values. NaN never compares greater, so it is never chosen.
int32_t argmax(std::span<const float> values) {
    size_t best = 0;
    for (size_t i = 1; i < values.size(); ++i)
        if (values[i] > values[best]) best = i;
    return static_cast<int32_t>(best);
}

// The largest value (NaN ignored). std::max_element's loop measured several times slower on
// 151,936 logits: it chains each compare on the last and keeps the maximum in memory.
float largest(std::span<const float> values) {
    // Four running maxima: one would chain every compare on the one before.
    float m[4] = {values[0], values[0], values[0], values[0]};
    size_t i = 0;
    for (; i + 4 <= values.size(); i += 4)
        for (int lane = 0; lane < 4; ++lane)
            m[lane] = values[i + lane] > m[lane] ? values[i + lane] : m[lane];
    for (; i < values.size(); ++i) m[0] = values[i] > m[0] ? values[i] : m[0];
    return std::max(std::max(m[0], m[1]), std::max(m[2], m[3]));
}

// A uniform double in [0, 1) with 53 random bits, for (seed, sequence, position): the sequence
// fills the counter's step word and rank half-word (sequences up to 2^48 are distinct streams),
// the position picks the block. 53 bits rather than 24 so that a token of probability 1e-8 in
// a 151,936-word vocabulary is still drawn at its rate.
double uniform_draw(uint64_t seed, const SampleKey& key) {
    const RngKey stream{seed, RngPurpose::Sampling, static_cast<uint16_t>(key.sequence >> 32),
                        static_cast<uint32_t>(key.sequence)};
    const PhiloxCounter words = random_block(stream, static_cast<uint64_t>(key.position));
    const uint64_t bits = (uint64_t{words[0] >> 5} << 26) | (words[1] >> 6);
    return static_cast<double>(bits) * 0x1p-53;
}

// Top-p's cut without sorting the vocabulary. Returns n such that candidates[0, n) is the
// nucleus: the shortest prefix, in order of weight, whose mass reaches `target` (all of them
// when none does), and sets `kept` to its mass. The weights are floats in [0, 1], whose bit
// patterns order like their values, so their top bits (the exponent and 4 bits of mantissa: 16
// buckets per binade) name a bucket. One pass sums the mass of each bucket; walking the buckets
// down finds the one in which the mass reaches the target; only that bucket is sorted. The
// nucleus goes first: the buckets above in their previous order, then the sorted cut.
size_t cut_nucleus(std::vector<Candidate>& candidates, double target, double& kept) {
    constexpr int kShift = 19;
    constexpr uint32_t kBuckets = (std::bit_cast<uint32_t>(1.0f) >> kShift) + 1;
    const auto bucket = [](float w) {  // NaN (from a NaN logit) lands in the top bucket
        return std::min(std::bit_cast<uint32_t>(w) >> kShift, kBuckets - 1);
    };
    std::array<double, kBuckets> bucket_mass{};
    for (const Candidate& c : candidates) bucket_mass[bucket(c.first)] += c.first;
    double mass = 0;
    uint32_t edge = kBuckets;
    while (edge > 0 && mass + bucket_mass[edge - 1] < target) mass += bucket_mass[--edge];
    if (edge == 0) {  // min-p left less than the target: its cut is the shorter one
        kept = mass;
        return candidates.size();
    }
    --edge;
    std::vector<Candidate> boundary;
    size_t n = 0;
    for (size_t i = 0; i < candidates.size(); ++i) {  // compaction in place: n <= i
        const uint32_t b = bucket(candidates[i].first);
        if (b > edge)
            candidates[n++] = candidates[i];
        else if (b == edge)
            boundary.push_back(candidates[i]);
    }
    std::sort(boundary.begin(), boundary.end(), before);
    for (const Candidate& c : boundary) {
        candidates[n++] = c;
        mass += c.first;
        if (mass >= target) break;
    }
    kept = mass;
    return n;
}

// Temperature, top-k, top-p, min-p and the draw over `values`; `candidates` is scratch.
int32_t draw(const SamplingParams& p, std::vector<Candidate>& candidates,
             std::span<const float> values, const SampleKey& key) {
    const auto V = static_cast<int64_t>(values.size());
    // Each candidate carries its weight exp((logit - max) / T): the softmax at the temperature
    // before normalisation, 1 for the most likely token. The order of weights is the order of
    // logits (up to logits so close that exp rounds them to one float, then ordered by id), so
    // the selections below keep their meaning. The most likely token is in every kept set.
    const double max_logit = largest(values);
    const double inv_t = 1.0 / p.temperature;
    const auto weight = [max_logit, inv_t](float logit) {
        return static_cast<float>(std::exp((double(logit) - max_logit) * inv_t));
    };
    // 7. Min-p keeps p(token) >= min_p * p(most likely), that is w >= min_p. The contract
    // applies it after top-p; it is applied while building the candidates here because the two
    // commute: each keeps a prefix of the candidates in order of probability (min-p by a
    // threshold), so either order keeps the shorter prefix, provided top-p's fraction refers to
    // the total over the top-k set, min-p's drops included (`total` below).
    const float min_p = p.min_p;
    double total = 0;  // over the top-k set
    double kept = 0;   // over the candidates

    // 5. Top-k: the k largest logits. A small k by one scan (each insertion costs O(k), and
    // there are about k log(V / k) of them); a larger one by partial selection, O(V).
    const bool has_top_k = p.top_k > 0 && p.top_k < V;
    if (has_top_k) {
        if (p.top_k <= 256) {
            select_largest(values, static_cast<size_t>(p.top_k), candidates);
        } else {
            // nth_element finds the k-th largest; a second scan then collects the k in id
            // order, so that their order does not depend on the library's selection.
            candidates.resize(values.size());
            for (int64_t i = 0; i < V; ++i) candidates[i] = {values[i], static_cast<int32_t>(i)};
            const auto kth = candidates.begin() + (p.top_k - 1);
            std::nth_element(candidates.begin(), kth, candidates.end(), before);
            const Candidate last = *kth;
            candidates.clear();
            for (int64_t i = 0; i < V; ++i) {
                const Candidate c{values[i], static_cast<int32_t>(i)};
                if (!before(last, c)) candidates.push_back(c);
            }
        }
        for (auto& c : candidates) {
            c.first = weight(c.first);
            total += c.first;
            kept += c.first >= min_p ? c.first : 0;
        }
        std::erase_if(candidates, [min_p](const Candidate& c) { return c.first < min_p; });
    } else {
        // Written unconditionally and counted branch-free: the loop is bound by exp alone.
        candidates.resize(values.size());
        size_t n = 0;
        for (int64_t i = 0; i < V; ++i) {
            const float w = weight(values[i]);
            total += w;
            candidates[n] = {w, static_cast<int32_t>(i)};
            kept += w >= min_p ? w : 0;
            n += w >= min_p;
        }
        candidates.resize(n);
    }

    // 6. Top-p (nucleus): the shortest prefix, in order of probability, whose mass reaches top_p
    // of the total over the top-k set.
    size_t n_kept = candidates.size();
    if (p.top_p < 1) n_kept = cut_nucleus(candidates, p.top_p * total, kept);

    // 8. The draw: a point in [0, kept mass), and the candidate whose interval holds it.
    const double u = uniform_draw(p.seed, key) * kept;
    double mass = 0;
    size_t last_positive = 0;
    for (size_t i = 0; i < n_kept; ++i) {
        if (candidates[i].first == 0) continue;
        mass += candidates[i].first;
        last_positive = i;
        if (u < mass) return candidates[i].second;
    }
    return candidates[last_positive].second;  // u rounded up to the kept mass
}

// The chosen token's log-probability and the top_logprobs most likely, from the raw logits.
void add_logprobs(const SamplingParams& params, std::span<const float> logits, SampledToken& out) {
    // log-softmax of the raw logits in double: logit - (max + log(sum exp(logit - max))).
    const double max_logit = largest(logits);
    double sum = 0;
    for (float x : logits) sum += std::exp(double(x) - max_logit);
    const double log_z = max_logit + std::log(sum);
    out.logprob = static_cast<float>(double(logits[out.id]) - log_z);

    std::vector<Candidate> top;
    select_largest(logits, static_cast<size_t>(params.top_logprobs), top);
    out.top.clear();
    for (const auto& [logit, id] : top)
        out.top.push_back({id, static_cast<float>(double(logit) - log_z)});
}

}  // namespace

SampledToken Sampler::sample(std::span<const float> logits, const SampleKey& key,
                             const TokenHistory& history) {
    TANDEM_ASSERT(!logits.empty());
    const SamplingParams& p = params_;
    const bool has_repetition =
        p.repetition_penalty != 1 && (!history.prompt.empty() || !history.generated.empty());
    const bool has_occurrence =
        (p.presence_penalty != 0 || p.frequency_penalty != 0) && !history.generated.empty();

    // Without adjustments the raw logits are used as they are (greedy then reads them once).
    std::span<const float> values = logits;
    if (!p.logit_bias.empty() || has_repetition || has_occurrence) {
        adjusted_.assign(logits.begin(), logits.end());
        const auto V = static_cast<int32_t>(adjusted_.size());
        // 1. Logit bias, added first. Ids past a trimmed span have no logit to bias.
        for (const auto& [id, bias] : p.logit_bias)
            if (id < V) adjusted_[id] += bias;
        if (has_repetition || has_occurrence) {
            // The distinct ids of the history, each with its count among the generated tokens:
            // sorted (count as 0 or 1, id) pairs, one run per id.
            candidates_.clear();
            for (int32_t id : history.prompt)
                if (id >= 0 && id < V) candidates_.emplace_back(0.0f, id);
            for (int32_t id : history.generated)
                if (id >= 0 && id < V) candidates_.emplace_back(1.0f, id);
            std::sort(candidates_.begin(), candidates_.end(),
                      [](const auto& a, const auto& b) { return a.second < b.second; });
            for (size_t at = 0; at < candidates_.size();) {
                const int32_t id = candidates_[at].second;
                double count = 0;
                for (; at < candidates_.size() && candidates_[at].second == id; ++at)
                    count += candidates_[at].first;
                float& logit = adjusted_[id];
                // 2. Hugging Face's repetition penalty (CTRL, Keskar et al. 2019), once per
                // distinct token of prompt and generated text: a positive logit is divided by
                // the penalty, a negative one multiplied, so a penalty > 1 always lowers it.
                if (has_repetition)
                    logit = logit > 0 ? logit / p.repetition_penalty : logit * p.repetition_penalty;
                // 3. OpenAI's presence and frequency penalties, over generated tokens only:
                // logit -= presence * [count > 0] + frequency * count.
                if (count > 0)
                    logit -= static_cast<float>(p.presence_penalty + p.frequency_penalty * count);
            }
        }
        values = adjusted_;
    }

    SampledToken out;
    // 4. Temperature 0 is greedy over the adjusted logits; else the filters and a draw.
    out.id = p.temperature == 0 ? argmax(values) : draw(p, candidates_, values, key);
    if (p.logprobs || p.top_logprobs > 0) add_logprobs(p, logits, out);
    return out;
}

}  // namespace tandem::infer

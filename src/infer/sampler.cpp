// The per-request sampler: logit adjustments (bias, then penalties), greedy or a filtered draw,
// and log-probabilities of the raw logits. Nothing here sorts the whole vocabulary: top-k selects
// partially, top-p sums a histogram of the weights and sorts only the bucket it cuts, and greedy
// is one pass. Validating the options is here too.
#include "infer/sampler.h"

#include <algorithm>
#include <array>
#include <bit>
#include <cmath>

#include "backend/cpu/simd.h"
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

// The largest value, vectorised: std::max_element's loop chains every compare on
// the one before.
TANDEM_CPU_CLONES float largest(const float* values, int64_t n) {
    float m = values[0];
#pragma omp simd reduction(max : m)
    for (int64_t i = 0; i < n; ++i) m = values[i] > m ? values[i] : m;
    return m;
}
float largest(std::span<const float> values) {
    return largest(values.data(), static_cast<int64_t>(values.size()));
}

// The weight of a logit at temperature T: exp((logit - max) / T), the softmax before its
// normalisation, 1 for the most likely token. exp_approx (relative error a few 1e-8) because it
// vectorises where std::exp is a libm call: over 151,936 logits that pass was most of the time
// of a draw. The quotient overflows to -inf for a vanishing T, which exp_approx takes to 0.
inline float tempered(float logit, float max_logit, float temperature) {
    return backend::cpu::exp_approx((logit - max_logit) / temperature);
}

// w[i] = tempered(values[i]) for all n, returning their sum; w may be values itself.
TANDEM_CPU_CLONES double tempered_weights(float* w, const float* values, int64_t n, float max_logit,
                                          float temperature) {
    double total = 0;
#pragma omp simd reduction(+ : total)
    for (int64_t i = 0; i < n; ++i) {
        w[i] = tempered(values[i], max_logit, temperature);
        total += w[i];
    }
    return total;
}

// The sum of the weights at or above `floor`.
TANDEM_CPU_CLONES double mass_from(const float* w, int64_t n, float floor) {
    double mass = 0;
#pragma omp simd reduction(+ : mass)
    for (int64_t i = 0; i < n; ++i) mass += w[i] >= floor ? w[i] : 0.0f;
    return mass;
}

// The scratch of the draws made on this thread, reused from one to the next: adjusted logits or
// weights [V], and (weight or logit, id) candidates.
struct Scratch {
    std::vector<float> adjusted;
    std::vector<Candidate> candidates;
};
Scratch& thread_scratch() {
    thread_local Scratch scratch;
    return scratch;
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

// The token whose interval of [0, total mass) holds `point`, walking `candidates[0, n)` in
// order; a point rounded up to the total goes to the last token of positive weight.
int32_t walk(const std::vector<Candidate>& candidates, size_t n, double point) {
    double mass = 0;
    size_t last_positive = 0;
    for (size_t i = 0; i < n; ++i) {
        if (candidates[i].first == 0) continue;
        mass += candidates[i].first;
        last_positive = i;
        if (point < mass) return candidates[i].second;
    }
    return candidates[last_positive].second;
}

// Temperature, top-k, top-p, min-p and the draw over `values`; `candidates` and `weights` are
// scratch (`values` may be `weights`' own storage).
int32_t draw(const SamplingParams& p, std::vector<Candidate>& candidates,
             std::vector<float>& weights, std::span<const float> values, const SampleKey& key) {
    const auto V = static_cast<int64_t>(values.size());
    const double u = uniform_draw(p.seed, key);
    // The order of weights is the order of logits (up to logits so close that their weights
    // round to one float, then ordered by id), so the selections below keep their meaning on
    // weights. The most likely token (weight 1) is in every kept set.
    const float max_logit = largest(values);
    // 7. Min-p keeps p(token) >= min_p * p(most likely), that is weight >= min_p. The contract
    // applies it after top-p; it is applied first here because the two commute: each keeps a
    // prefix of the candidates in order of probability (min-p by a threshold), so either order
    // keeps the shorter prefix, provided top-p's fraction refers to the total over the top-k
    // set, min-p's drops included (`total`).
    const float min_p = p.min_p;
    double total = 0;  // over the top-k set
    double kept = 0;   // over the candidates

    // 5. Top-k: the k largest logits. A small k by one scan (each insertion costs O(k), and
    // there are about k log(V / k) of them); a larger one by partial selection, O(V).
    if (p.top_k > 0 && p.top_k < V) {
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
            c.first = tempered(c.first, max_logit, p.temperature);
            total += c.first;
            kept += c.first >= min_p ? c.first : 0;
        }
        std::erase_if(candidates, [min_p](const Candidate& c) { return c.first < min_p; });
    } else {
        weights.resize(values.size());  // no reallocation when `values` is its storage
        total = tempered_weights(weights.data(), values.data(), V, max_logit, p.temperature);
        if (p.top_p == 1) {
            // Temperature and min-p alone: the draw walks the weights in id order, no
            // candidates; whole blocks of 1024 are stepped over by their vectorised sums.
            kept = min_p > 0 ? mass_from(weights.data(), V, min_p) : total;
            const double point = u * kept;
            constexpr int64_t kBlock = 1024;
            double mass = 0;
            int64_t i = 0;
            for (; i + kBlock <= V; i += kBlock) {
                const double block = mass_from(weights.data() + i, kBlock, min_p);
                if (point < mass + block) break;
                mass += block;
            }
            const auto is_kept = [&](int64_t j) { return weights[j] >= min_p && weights[j] > 0; };
            for (; i < V; ++i) {
                if (!is_kept(i)) continue;
                mass += weights[i];
                if (point < mass) return static_cast<int32_t>(i);
            }
            // The point rounded up to the kept mass: the last kept token.
            int64_t last = V - 1;
            while (last > 0 && !is_kept(last)) --last;
            return static_cast<int32_t>(last);
        }
        // Written unconditionally and counted branch-free.
        candidates.resize(values.size());
        size_t n = 0;
        for (int64_t i = 0; i < V; ++i) {
            candidates[n] = {weights[i], static_cast<int32_t>(i)};
            kept += weights[i] >= min_p ? weights[i] : 0;
            n += weights[i] >= min_p;
        }
        candidates.resize(n);
    }

    // 6. Top-p (nucleus): the shortest prefix, in order of probability, whose mass reaches top_p
    // of the total over the top-k set.
    size_t n_kept = candidates.size();
    if (p.top_p < 1) n_kept = cut_nucleus(candidates, p.top_p * total, kept);
    // 8. The draw: a point in [0, kept mass), and the candidate whose interval holds it.
    return walk(candidates, n_kept, u * kept);
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

    auto& [adjusted, candidates] = thread_scratch();
    // Without adjustments the raw logits are used as they are (greedy then reads them once).
    std::span<const float> values = logits;
    if (!p.logit_bias.empty() || has_repetition || has_occurrence) {
        adjusted.assign(logits.begin(), logits.end());
        const auto V = static_cast<int32_t>(adjusted.size());
        // 1. Logit bias, added first. Ids past a trimmed span have no logit to bias.
        for (const auto& [id, bias] : p.logit_bias)
            if (id < V) adjusted[id] += bias;
        if (has_repetition || has_occurrence) {
            // The distinct ids of the history, each with its count among the generated tokens:
            // sorted (count as 0 or 1, id) pairs, one run per id.
            candidates.clear();
            for (int32_t id : history.prompt)
                if (id >= 0 && id < V) candidates.emplace_back(0.0f, id);
            for (int32_t id : history.generated)
                if (id >= 0 && id < V) candidates.emplace_back(1.0f, id);
            std::sort(candidates.begin(), candidates.end(),
                      [](const auto& a, const auto& b) { return a.second < b.second; });
            for (size_t at = 0; at < candidates.size();) {
                const int32_t id = candidates[at].second;
                double count = 0;
                for (; at < candidates.size() && candidates[at].second == id; ++at)
                    count += candidates[at].first;
                float& logit = adjusted[id];
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
        values = adjusted;
    }

    SampledToken out;
    // 4. Temperature 0 is greedy over the adjusted logits; else the filters and a draw.
    out.id = p.temperature == 0 ? argmax(values) : draw(p, candidates, adjusted, values, key);
    if (p.logprobs || p.top_logprobs > 0) add_logprobs(p, logits, out);
    return out;
}

}  // namespace tandem::infer

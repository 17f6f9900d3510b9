// Each stage of the sampler on hand-made logits whose outcome is known exactly, the statistics
// of the draw against the softmax, the log-probabilities against a direct log-softmax, and every
// validation error.
#include "infer/sampler.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <set>

#include "common/error_message.h"
#include "common/test_util.h"

namespace tandem::infer {
namespace {

using testing::error_message;

SamplingParams greedy() {
    SamplingParams p;
    p.temperature = 0;
    return p;
}

// Logits whose softmax is exactly `probs` (up to rounding).
std::vector<float> logits_of(const std::vector<double>& probs) {
    std::vector<float> out;
    for (double p : probs) out.push_back(static_cast<float>(std::log(p)));
    return out;
}

// How often each id is drawn over positions 0 .. n-1 of sequence 0.
std::vector<int> counts(Sampler& s, const std::vector<float>& logits, int n) {
    std::vector<int> c(logits.size());
    for (int pos = 0; pos < n; ++pos) ++c[s.sample(logits, {0, pos}).id];
    return c;
}

// Pearson's chi-square of observed counts against expected probabilities (ids whose
// probability is 0 must never be drawn: any such draw makes the statistic infinite).
double chi_square(const std::vector<int>& observed, const std::vector<double>& expected) {
    const double n = std::accumulate(observed.begin(), observed.end(), 0.0);
    double chi2 = 0;
    for (size_t i = 0; i < observed.size(); ++i) {
        if (expected[i] == 0) {
            if (observed[i] > 0) return INFINITY;
            continue;
        }
        const double e = n * expected[i];
        chi2 += (observed[i] - e) * (observed[i] - e) / e;
    }
    return chi2;
}

std::vector<double> normalised(std::vector<double> w) {
    const double total = std::accumulate(w.begin(), w.end(), 0.0);
    for (double& x : w) x /= total;
    return w;
}

// Draws n times and compares the frequencies with `weights` (not normalised; 0: never drawn) by
// Pearson's chi-square against its critical value at p = 0.001: a correct sampler with a fixed
// seed passes, a wrong distribution (a missed renormalisation, a kept token too many) does not.
void expect_draws_follow(Sampler& s, const std::vector<float>& logits,
                         const std::vector<double>& weights, int n = 10000) {
    constexpr double kCritical[] = {0, 10.83, 13.82, 16.27, 18.47, 20.52, 22.46};  // by dof
    const auto n_kept =
        std::count_if(weights.begin(), weights.end(), [](double w) { return w > 0; });
    const auto dof = std::max<int64_t>(1, n_kept - 1);
    ASSERT_LT(dof, 7);
    EXPECT_LT(chi_square(counts(s, logits, n), normalised(weights)), kCritical[dof]);
}

TEST(Sampler, GreedyTakesTheLargestLogitAndTheLowestIdOnTies) {
    Sampler s(greedy());
    EXPECT_EQ(s.sample(std::vector<float>{0.1f, 3.0f, -2.0f, 3.0f}, {}).id, 1);
    EXPECT_EQ(s.sample(std::vector<float>{-5.0f, -7.0f}, {}).id, 0);
    EXPECT_EQ(s.sample(std::vector<float>{-INFINITY, -1e30f, 2.0f}, {}).id, 2);
}

TEST(Sampler, LogitBiasIsAddedFirstAndCanForceOrBanAToken) {
    const std::vector<float> logits = {4.0f, 1.0f, 3.0f, -2.0f};
    SamplingParams p = greedy();
    p.logit_bias = {{3, 100.0f}};
    EXPECT_EQ(Sampler(p).sample(logits, {}).id, 3);
    p.logit_bias = {{0, -100.0f}};
    EXPECT_EQ(Sampler(p).sample(logits, {}).id, 2);
    p.logit_bias = {{1, 2.5f}};  // 1 + 2.5 = 3.5: above 3, below 4
    EXPECT_EQ(Sampler(p).sample(logits, {}).id, 0);
    p.logit_bias = {{1, 3.5f}, {0, -0.25f}};  // 4.5 against 3.75
    EXPECT_EQ(Sampler(p).sample(logits, {}).id, 1);

    // At temperature 1 a bias of +100 takes every draw, and a bias of -100 none.
    p.temperature = 1;
    p.logit_bias = {{3, 100.0f}};
    Sampler forced(p);
    for (int pos = 0; pos < 300; ++pos) ASSERT_EQ(forced.sample(logits, {0, pos}).id, 3);
    p.logit_bias = {{0, -100.0f}};
    Sampler banned(p);
    for (int pos = 0; pos < 300; ++pos) ASSERT_NE(banned.sample(logits, {0, pos}).id, 0);
}

TEST(Sampler, RepetitionPenaltyDividesPositiveAndMultipliesNegativeLogitsOncePerToken) {
    SamplingParams p = greedy();
    p.repetition_penalty = 2.0f;
    const std::vector<int32_t> zero_thrice = {0, 0, 0};
    // Once: 3.0 / 2 = 1.5 > 1.4 keeps token 0; twice (0.75) or more would lose to 1.4.
    EXPECT_EQ(Sampler(p).sample(std::vector<float>{3.0f, 1.4f}, {}, {{}, zero_thrice}).id, 0);
    EXPECT_EQ(Sampler(p).sample(std::vector<float>{3.0f, 1.6f}, {}, {{}, zero_thrice}).id, 1);
    // The prompt counts too, and a token in both counts once.
    EXPECT_EQ(Sampler(p).sample(std::vector<float>{3.0f, 1.6f}, {}, {zero_thrice, {}}).id, 1);
    EXPECT_EQ(Sampler(p).sample(std::vector<float>{3.0f, 1.4f}, {}, {zero_thrice, zero_thrice}).id,
              0);
    // Negative: -1 * 2 = -2 < -1.5 (dividing would have given -0.5 and kept token 0).
    EXPECT_EQ(Sampler(p).sample(std::vector<float>{-1.0f, -1.5f}, {}, {zero_thrice, {}}).id, 1);
    // A penalty below 1 favours what was seen: 1.0 / 0.5 = 2 > 1.9.
    p.repetition_penalty = 0.5f;
    EXPECT_EQ(Sampler(p).sample(std::vector<float>{1.0f, 1.9f}, {}, {{}, zero_thrice}).id, 0);
    // Without a history the penalty changes nothing.
    EXPECT_EQ(Sampler(p).sample(std::vector<float>{1.0f, 1.9f}, {}).id, 1);
}

TEST(Sampler, PresenceAndFrequencyPenaltiesCountGeneratedTokensOnly) {
    SamplingParams p = greedy();
    p.presence_penalty = 0.5f;
    p.frequency_penalty = 1.0f;
    const std::vector<int32_t> generated = {0, 1, 0};
    const std::vector<int32_t> prompt = {2, 2, 2};
    // Token 0: 5 - 0.5 - 2 * 1 = 2.5; token 1: 4 - 0.5 - 1 = 2.5; token 2 only in the prompt.
    EXPECT_EQ(Sampler(p).sample(std::vector<float>{5.0f, 4.0f, 2.6f}, {}, {prompt, generated}).id,
              2);
    EXPECT_EQ(Sampler(p).sample(std::vector<float>{5.0f, 4.0f, 2.4f}, {}, {prompt, generated}).id,
              0);
    EXPECT_EQ(Sampler(p).sample(std::vector<float>{5.0f, 4.01f, 2.4f}, {}, {prompt, generated}).id,
              1);
    // A negative penalty encourages repeats: token 0 at 1 + 2 = 3 > 2.9, but not from the prompt.
    p.presence_penalty = -2.0f;
    p.frequency_penalty = 0.0f;
    EXPECT_EQ(
        Sampler(p).sample(std::vector<float>{1.0f, 2.9f}, {}, {{}, std::vector<int32_t>{0}}).id, 0);
    EXPECT_EQ(
        Sampler(p).sample(std::vector<float>{1.0f, 2.9f}, {}, {std::vector<int32_t>{0}, {}}).id, 1);
}

TEST(Sampler, PenaltiesApplyAfterTheBias) {
    // Token 0: bias then penalty gives (1 + 4) / 2 = 2.5 < 3; penalty then bias would have
    // given 1 / 2 + 4 = 4.5 > 3.
    SamplingParams p = greedy();
    p.repetition_penalty = 2.0f;
    p.logit_bias = {{0, 4.0f}};
    EXPECT_EQ(
        Sampler(p).sample(std::vector<float>{1.0f, 3.0f}, {}, {{}, std::vector<int32_t>{0}}).id, 1);
}

TEST(Sampler, TemperatureDrawsFollowTheSoftmax) {
    const std::vector<float> logits = {1.0f, 0.2f, -0.5f, 2.0f, 0.0f, -3.0f};
    for (float t : {1.0f, 0.6f, 2.0f}) {
        SamplingParams p;
        p.temperature = t;
        p.seed = 11;
        Sampler s(p);
        std::vector<double> w;
        for (float x : logits) w.push_back(std::exp(x / t));
        SCOPED_TRACE(t);
        expect_draws_follow(s, logits, w, 20000);
    }
}

TEST(Sampler, DrawsFollowTheSoftmaxAcrossALargeVocabulary) {
    // Four likely tokens far apart (the draw steps over whole blocks of weights to reach them)
    // among 5,000 negligible ones, at temperature 1 and then with min-p.
    std::vector<float> logits(5000, -60.0f);
    const std::vector<int> ids = {10, 1500, 3000, 4999};
    const std::vector<double> probs = {0.1, 0.2, 0.3, 0.4};
    for (size_t i = 0; i < ids.size(); ++i) logits[ids[i]] = static_cast<float>(std::log(probs[i]));
    SamplingParams p;
    p.seed = 12;
    for (float min_p : {0.0f, 0.6f}) {  // 0.6: keeps >= 0.24, that is 0.3 and 0.4
        p.min_p = min_p;
        Sampler s(p);
        const auto c = counts(s, logits, 10000);
        std::vector<int> observed;
        std::vector<double> expected;
        for (size_t i = 0; i < ids.size(); ++i) {
            observed.push_back(c[ids[i]]);
            expected.push_back(probs[i] >= 0.24 || min_p == 0 ? probs[i] : 0);
        }
        EXPECT_EQ(std::accumulate(observed.begin(), observed.end(), 0), 10000) << min_p;
        EXPECT_LT(chi_square(observed, normalised(expected)), min_p == 0 ? 16.27 : 10.83) << min_p;
    }
}

TEST(Sampler, AVanishingTemperatureDrawsTheMostLikelyToken) {
    SamplingParams p;
    p.temperature = 1e-45f;  // the smallest float above 0: 1 / T overflows a float
    Sampler s(p);
    for (int pos = 0; pos < 50; ++pos)
        ASSERT_EQ(s.sample(std::vector<float>{0.5f, 2.0f, 1.999f}, {0, pos}).id, 1);
}

TEST(Sampler, TopKKeepsTheKMostLikelyAndRenormalises) {
    const std::vector<float> logits = {1.0f, 5.0f, 3.0f, 4.0f, 2.0f};
    SamplingParams p;
    p.top_k = 2;
    p.seed = 5;
    Sampler s(p);
    expect_draws_follow(s, logits, {0, std::exp(5.0), 0, std::exp(4.0), 0});
    p.top_k = 1;
    Sampler one(p);
    for (int pos = 0; pos < 200; ++pos) ASSERT_EQ(one.sample(logits, {0, pos}).id, 1);
    p.top_k = 99;  // larger than the vocabulary: no limit
    Sampler all(p);
    std::vector<double> w;
    for (float x : logits) w.push_back(std::exp(x));
    expect_draws_follow(all, logits, w, 20000);
}

// Over the probabilities 0.15, 0.5, 0.05, 0.3: each value of one option (top_p or min_p) and
// the weights the draws must follow with it.
void expect_cuts(float SamplingParams::*option,
                 const std::vector<std::pair<float, std::vector<double>>>& cases) {
    const std::vector<float> logits = logits_of({0.15, 0.5, 0.05, 0.3});
    for (const auto& [value, expected] : cases) {
        SamplingParams p;
        p.seed = 9;
        p.*option = value;
        Sampler s(p);
        SCOPED_TRACE(value);
        expect_draws_follow(s, logits, expected);
    }
}

TEST(Sampler, TopPKeepsTheShortestPrefixReachingTheMass) {
    expect_cuts(&SamplingParams::top_p, {{0.4f, {0, 1, 0, 0}},
                                         {0.75f, {0, 0.5, 0, 0.3}},
                                         {0.85f, {0.15, 0.5, 0, 0.3}},
                                         {1.0f, {0.15, 0.5, 0.05, 0.3}}});
}

TEST(Sampler, TopPBreaksTiesByIdInALargeVocabulary) {
    // 300 equally likely tokens and 700 negligible ones: a nucleus of 0.491 is tokens 0..147
    // (ties go by id); 0.999 is all 300.
    std::vector<float> logits(1000, -30.0f);
    for (int i = 0; i < 300; ++i) logits[i] = 0.5f;
    SamplingParams p;
    p.seed = 4;
    p.top_p = 0.491f;
    Sampler half(p);
    const auto c = counts(half, logits, 3000);
    EXPECT_EQ(std::accumulate(c.begin(), c.begin() + 148, 0), 3000);
    EXPECT_GT(std::accumulate(c.begin() + 128, c.begin() + 148, 0), 0);
    p.top_p = 0.999f;
    Sampler most(p);
    const auto d = counts(most, logits, 3000);
    EXPECT_EQ(std::accumulate(d.begin(), d.begin() + 300, 0), 3000);
    EXPECT_GT(std::accumulate(d.begin() + 280, d.begin() + 300, 0), 0);
}

TEST(Sampler, TopPCutsAtTheExactTokenAcrossManyWeights) {
    // Weights 0.999^i over 3000 tokens span several binades (many of the cut's buckets): the
    // nucleus of 0.5, computed here by plain accumulation, ends at token n - 1, which is drawn,
    // and token n never is.
    const int V = 3000;
    std::vector<float> logits(V);
    double total = 0;
    for (int i = 0; i < V; ++i) {
        logits[i] = static_cast<float>(i * std::log(0.999));
        total += std::exp(double(logits[i]));
    }
    int n = 0;
    for (double mass = 0; mass < 0.5 * total; ++n) mass += std::exp(double(logits[n]));
    SamplingParams p;
    p.seed = 6;
    p.top_p = 0.5f;
    Sampler s(p);
    const auto c = counts(s, logits, 10000);
    EXPECT_EQ(std::accumulate(c.begin(), c.begin() + n, 0), 10000);
    EXPECT_GT(c[n - 1], 0);
    // Shuffled ids change nothing: the cut follows the weights, not the ids.
    std::vector<float> reversed(logits.rbegin(), logits.rend());
    const auto r = counts(s, reversed, 10000);
    EXPECT_EQ(std::accumulate(r.end() - n, r.end(), 0), 10000);
    EXPECT_GT(r[V - n], 0);
}

TEST(Sampler, TopPOverAFullVocabularyMatchesASortedReference) {
    const int64_t V = 151936;
    const std::vector<float> logits = testing::random_normal(V, 21, 3.0f);
    SamplingParams p;
    p.top_p = 0.9f;
    p.temperature = 0.8f;
    // The reference nucleus: sort everything, accumulate the tempered softmax.
    std::vector<int32_t> order(V);
    std::iota(order.begin(), order.end(), 0);
    std::sort(order.begin(), order.end(), [&](int32_t a, int32_t b) {
        return logits[a] != logits[b] ? logits[a] > logits[b] : a < b;
    });
    const double max_logit = logits[order[0]];
    double total = 0;
    for (float x : logits) total += std::exp((x - max_logit) / p.temperature);
    std::set<int32_t> nucleus;
    for (double mass = 0; mass < p.top_p * total * (1 - 1e-6);) {
        const int32_t id = order[nucleus.size()];
        nucleus.insert(id);
        mass += std::exp((logits[id] - max_logit) / p.temperature);
    }
    ASSERT_GT(nucleus.size(), 64u);
    Sampler s(p);
    for (int pos = 0; pos < 300; ++pos) ASSERT_TRUE(nucleus.count(s.sample(logits, {0, pos}).id));
}

TEST(Sampler, MinPDropsTokensBelowAFractionOfTheMostLikely) {
    // Relative to 0.5: 0.35 keeps >= 0.175, 0.25 keeps >= 0.125, 1 keeps the most likely only.
    expect_cuts(&SamplingParams::min_p, {{0.35f, {0, 0.5, 0, 0.3}},
                                         {0.25f, {0.15, 0.5, 0, 0.3}},
                                         {1.0f, {0, 1, 0, 0}},
                                         {0.05f, {0.15, 0.5, 0.05, 0.3}}});
}

TEST(Sampler, TopKThenTopPThenMinP) {
    const std::vector<float> logits = logits_of({0.25, 0.04, 0.3, 0.15, 0.06, 0.2});
    SamplingParams p;
    p.seed = 8;
    p.top_k = 4;  // keeps 0.3, 0.25, 0.2, 0.15 (ids 2, 0, 5, 3), renormalised over 0.9
    // Top-p refers to the top-k set: 0.333, 0.611, 0.833 reaches 0.8 with three tokens (over the
    // whole vocabulary it would have taken four: 0.3, 0.55, 0.75, 0.9).
    p.top_p = 0.8f;
    Sampler k_p(p);
    expect_draws_follow(k_p, logits, {0.25, 0, 0.3, 0, 0, 0.2});
    // Min-p 0.75 of 0.3 keeps >= 0.225: ids 2 and 0.
    p.min_p = 0.75f;
    Sampler k_p_min(p);
    expect_draws_follow(k_p_min, logits, {0.25, 0, 0.3, 0, 0, 0});
    // Top-p 0.6 stops at two (0.611), min-p 0.5 would have kept four: two stay.
    p.top_p = 0.6f;
    p.min_p = 0.5f;
    Sampler two(p);
    expect_draws_follow(two, logits, {0.25, 0, 0.3, 0, 0, 0});
    // Min-p 0.6 drops 0.15, but top-p's 0.7 still refers to the top-k set's 0.9: three reach it
    // (over the 0.75 min-p leaves, two would have: 0.55 >= 0.525).
    p.top_p = 0.7f;
    p.min_p = 0.6f;
    Sampler three(p);
    expect_draws_follow(three, logits, {0.25, 0, 0.3, 0, 0, 0.2});
    // Top-k 1 wins over everything else.
    p.top_k = 1;
    Sampler one(p);
    for (int pos = 0; pos < 200; ++pos) ASSERT_EQ(one.sample(logits, {0, pos}).id, 2);
}

TEST(Sampler, LogprobsAreTheLogSoftmaxOfTheRawLogits) {
    const int64_t V = 1000;
    const std::vector<float> logits = testing::random_normal(V, 3, 2.0f);
    std::vector<double> reference(V);
    double max_logit = *std::max_element(logits.begin(), logits.end()), sum = 0;
    for (float x : logits) sum += std::exp(x - max_logit);
    for (int64_t i = 0; i < V; ++i) reference[i] = logits[i] - max_logit - std::log(sum);
    std::vector<int32_t> by_logit(V);
    std::iota(by_logit.begin(), by_logit.end(), 0);
    std::stable_sort(by_logit.begin(), by_logit.end(),
                     [&](int32_t a, int32_t b) { return logits[a] > logits[b]; });

    // Bias, penalties and temperature change the choice, not the reported log-probabilities.
    SamplingParams p;
    p.temperature = 0.7f;
    p.repetition_penalty = 1.3f;
    p.frequency_penalty = 0.4f;
    p.logit_bias = {{by_logit[500], 100.0f}};
    p.logprobs = true;
    p.top_logprobs = 5;
    Sampler s(p);
    const std::vector<int32_t> generated = {by_logit[0], by_logit[1], by_logit[1]};
    const SampledToken t = s.sample(logits, {0, 3}, {{}, generated});
    EXPECT_EQ(t.id, by_logit[500]);
    EXPECT_NEAR(t.logprob, reference[t.id], 1e-5);
    ASSERT_EQ(t.top.size(), 5u);
    for (size_t i = 0; i < 5; ++i) {
        EXPECT_EQ(t.top[i].id, by_logit[i]);
        EXPECT_NEAR(t.top[i].logprob, reference[by_logit[i]], 1e-5);
    }

    // At most the vocabulary; greedy reports them too; none when not asked for.
    SamplingParams q = greedy();
    q.logprobs = true;
    q.top_logprobs = 20;
    const SampledToken g = Sampler(q).sample(std::vector<float>{0.0f, 1.0f, 1.0f}, {});
    EXPECT_EQ(g.id, 1);
    EXPECT_NEAR(g.logprob, 1.0 - std::log(1 + 2 * std::exp(1.0)), 1e-6);
    ASSERT_EQ(g.top.size(), 3u);
    EXPECT_EQ(g.top[0].id, 1);
    EXPECT_EQ(g.top[1].id, 2);
    EXPECT_EQ(g.top[2].id, 0);
    EXPECT_TRUE(Sampler(greedy()).sample(logits, {}).top.empty());
}

TEST(Sampler, TheSameKeyRepeatsAndSequencesOfOneSeedDiffer) {
    const std::vector<float> logits = testing::random_normal(500, 1, 0.5f);
    SamplingParams p;
    p.seed = 42;
    p.top_p = 0.95f;
    Sampler a(p), b(p);
    int differ = 0, differ_seed = 0;
    SamplingParams q = p;
    q.seed = 43;
    Sampler c(q);
    for (int pos = 0; pos < 200; ++pos) {
        const int32_t first = a.sample(logits, {0, pos}).id;
        ASSERT_EQ(first, b.sample(logits, {0, pos}).id);
        ASSERT_EQ(first, a.sample(logits, {0, pos}).id);
        ASSERT_EQ(a.sample(logits, {7, pos}).id, b.sample(logits, {7, pos}).id);
        differ += first != a.sample(logits, {1, pos}).id;
        differ_seed += first != c.sample(logits, {0, pos}).id;
    }
    // Almost every draw differs between sequences (a repeat has probability ~1/500 per draw).
    EXPECT_GT(differ, 180);
    EXPECT_GT(differ_seed, 180);
    // Sequences beyond 32 bits are distinct streams too.
    int differ_high = 0;
    for (int pos = 0; pos < 200; ++pos)
        differ_high += a.sample(logits, {1ull << 32, pos}).id != a.sample(logits, {0, pos}).id;
    EXPECT_GT(differ_high, 180);
}

TEST(Sampler, ValidateNamesTheOptionTheValueAndTheRange) {
    struct Case {
        void (*set)(SamplingParams&);
        std::vector<std::string> parts;
    };
    const std::vector<Case> cases = {
        {[](SamplingParams& p) { p.temperature = -1; }, {"temperature", "-1", ">= 0"}},
        {[](SamplingParams& p) { p.temperature = NAN; }, {"temperature", "nan", "finite"}},
        {[](SamplingParams& p) { p.top_k = -3; }, {"top_k", "-3", ">= 0"}},
        {[](SamplingParams& p) { p.top_p = 0; }, {"top_p", "0", "(0, 1]"}},
        {[](SamplingParams& p) { p.top_p = 1.5f; }, {"top_p", "1.5", "(0, 1]"}},
        {[](SamplingParams& p) { p.min_p = -0.1f; }, {"min_p", "-0.1", "[0, 1]"}},
        {[](SamplingParams& p) { p.min_p = 2; }, {"min_p", "2", "[0, 1]"}},
        {[](SamplingParams& p) { p.repetition_penalty = 0; }, {"repetition_penalty", "0", "> 0"}},
        {[](SamplingParams& p) { p.presence_penalty = 2.5f; },
         {"presence_penalty", "2.5", "[-2, 2]"}},
        {[](SamplingParams& p) { p.frequency_penalty = -3; },
         {"frequency_penalty", "-3", "[-2, 2]"}},
        {[](SamplingParams& p) { p.top_logprobs = 21; }, {"top_logprobs", "21", "[0, 20]"}},
        {[](SamplingParams& p) { p.top_logprobs = -1; }, {"top_logprobs", "-1", "[0, 20]"}},
        {[](SamplingParams& p) {
             p.logit_bias = {{-1, 1}};
         },
         {"logit_bias", "-1", "[0, 100)"}},
        {[](SamplingParams& p) {
             p.logit_bias = {{100, 1}};
         },
         {"logit_bias", "100", "[0, 100)"}},
        {[](SamplingParams& p) {
             p.logit_bias = {{5, 101}};
         },
         {"logit_bias", "token 5", "101", "[-100, 100]"}},
        {[](SamplingParams& p) {
             p.logit_bias = {{5, 1}, {6, 2}, {5, -1}};
         },
         {"logit_bias", "token 5", "twice"}},
    };
    for (const Case& c : cases) {
        SamplingParams p;
        c.set(p);
        const std::string message = error_message([&] { p.validate(100); });
        for (const std::string& part : c.parts)
            EXPECT_NE(message.find(part), std::string::npos) << message << " lacks " << part;
    }
    // The edges of every range are accepted.
    SamplingParams edges;
    edges.temperature = 0;
    edges.top_p = 1;
    edges.min_p = 1;
    edges.presence_penalty = -2;
    edges.frequency_penalty = 2;
    edges.top_logprobs = 20;
    edges.logit_bias = {{0, -100}, {99, 100}};
    EXPECT_EQ(error_message([&] { edges.validate(100); }), "no error");
}

}  // namespace
}  // namespace tandem::infer

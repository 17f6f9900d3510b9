// Softmax cross-entropy with ignored rows and per-token loss weights: every backend against
// reference/, reference/ against a hand-computed loss and finite differences.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "conformance.h"
#include "gradcheck.h"

namespace tandem::testing {
namespace {

constexpr int32_t kIgnore = -100;

// Loss weights in [0, 2) with every fourth of them 0 (a mask).
std::vector<float> loss_weights(int64_t N, uint64_t seed) {
    std::vector<float> w = random_uniform(N, seed, 0.0f, 2.0f);
    for (int64_t n = 0; n < N; n += 4) w[n] = 0.0f;
    return w;
}

// Targets in [0, V) with every third row ignored.
std::vector<int32_t> targets_with_ignored_rows(int64_t N, int64_t V, uint64_t seed) {
    std::vector<int32_t> targets = random_ints(N, seed, 0, static_cast<int32_t>(V));
    for (int64_t n = 1; n < N; n += 3) targets[n] = kIgnore;
    return targets;
}

TEST(CrossEntropy, MatchesReferenceWithIgnoredRows) {
    for (const Target& target : conformance_targets())
        for (auto [N, V] :
             {std::pair<int64_t, int64_t>{1, 1}, {7, 1}, {7, 33}, {5, 4097}, {33, 50}}) {
            const std::string what =
                target.label() + " N=" + std::to_string(N) + " V=" + std::to_string(V);
            const DType stats_dtype = backend::stats_dtype(target.dtype);
            Pair logits = values(target, random_normal(N * V, 1, 4.0f), {N, V});
            Pair targets = ints(target, targets_with_ignored_rows(N, V, 2), {N});
            Pair losses = values(target, random_normal(N, 3), {N});  // overwritten
            Pair lse = overwritten(target, {N}, stats_dtype);
            run_both(target, [&](backend::Backend& be, Side s) {
                be.cross_entropy_forward(s(losses), s(lse), s(logits), s(targets), kIgnore);
            });
            expect_close(losses, kDefaultTolerance.of(target.dtype), what + " losses");
            expect_close(lse, kDefaultTolerance.of(target.dtype), what + " lse");

            Pair dlogits = values(target, random_normal(N * V, 4), {N, V});  // overwritten
            run_both(target, [&](backend::Backend& be, Side s) {
                be.cross_entropy_backward(s(dlogits), s(logits), s(lse), s(targets), {}, 0.25f,
                                          kIgnore);
            });
            expect_close(dlogits, kDefaultTolerance.of(target.dtype), what + " dlogits");

            // Per-token weights, with zeros (a mask) on rows that are not ignored.
            Pair weights = pair_of(target, loss_weights(N, 5), {N}, stats_dtype);
            Pair weighted = overwritten(target, {N, V}, target.dtype);
            run_both(target, [&](backend::Backend& be, Side s) {
                be.cross_entropy_backward(s(weighted), s(logits), s(lse), s(targets), s(weights),
                                          0.25f, kIgnore);
            });
            expect_close(weighted, kDefaultTolerance.of(target.dtype), what + " weighted dlogits");

            // dlogits may alias logits.
            run_both(target, [&](backend::Backend& be, Side s) {
                be.cross_entropy_backward(s(logits), s(logits), s(lse), s(targets), {}, 0.25f,
                                          kIgnore);
            });
            expect_close(logits, kDefaultTolerance.of(target.dtype), what + " dlogits in place");
        }
}

TEST(CrossEntropy, MatchesReferenceForLogitsFarBeyondExpRange) {
    // Logits of +-3e4: exp overflows f32 (and f64) without the max subtracted first.
    for (const Target& target : conformance_targets()) {
        const int64_t N = 6, V = 4097;
        Pair logits = values(target, random_normal(N * V, 5, 1e4f), {N, V});
        Pair targets = ints(target, targets_with_ignored_rows(N, V, 6), {N});
        Pair losses = overwritten(target, {N}, backend::stats_dtype(target.dtype));
        Pair lse = overwritten(target, {N}, backend::stats_dtype(target.dtype));
        Pair dlogits = overwritten(target, {N, V}, target.dtype);
        run_both(target, [&](backend::Backend& be, Side s) {
            be.cross_entropy_forward(s(losses), s(lse), s(logits), s(targets), kIgnore);
            be.cross_entropy_backward(s(dlogits), s(logits), s(lse), s(targets), {}, 1.0f, kIgnore);
        });
        expect_close(losses, kDefaultTolerance.of(target.dtype), target.label() + " losses");
        expect_close(lse, kDefaultTolerance.of(target.dtype), target.label() + " lse");
        expect_close(dlogits, kDefaultTolerance.of(target.dtype), target.label() + " dlogits");
    }
}

TEST(CrossEntropy, ReferenceGivesLogTwoForTwoEqualLogitsAndZeroWhenIgnored) {
    auto& ref = reference_backend();
    HostF64 logits({2, 2}, 0), losses({2}, 0), lse({2}, 0), dlogits({2, 2}, 0);
    logits.data = {3.0, 3.0, 1.0, 2.0};
    std::vector<int32_t> targets = {1, kIgnore};
    Tensor t(targets.data(), DType::I32, {2});
    ref.cross_entropy_forward(losses, lse, logits, t, kIgnore);
    EXPECT_NEAR(losses.data[0], std::log(2.0), 1e-15);
    EXPECT_NEAR(lse.data[0], 3.0 + std::log(2.0), 1e-15);
    EXPECT_EQ(losses.data[1], 0.0);
    ref.cross_entropy_backward(dlogits, logits, lse, t, {}, 2.0f, kIgnore);
    EXPECT_NEAR(dlogits.data[0], 1.0, 1e-15);   // 2 * (1/2 - 0)
    EXPECT_NEAR(dlogits.data[1], -1.0, 1e-15);  // 2 * (1/2 - 1)
    EXPECT_EQ(dlogits.data[2], 0.0);
    EXPECT_EQ(dlogits.data[3], 0.0);
}

TEST(CrossEntropy, ReferenceBackwardMatchesFiniteDifferences) {
    auto& ref = reference_backend();
    const int64_t N = 4, V = 6;
    const float dloss = 0.7f;
    HostF64 logits({N, V}, 101, 2.0f), losses({N}, 0), lse({N}, 0), dlogits({N, V}, 0);
    std::vector<int32_t> targets = targets_with_ignored_rows(N, V, 102);
    Tensor t(targets.data(), DType::I32, {N});
    auto loss = [&] {
        ref.cross_entropy_forward(losses, lse, logits, t, kIgnore);
        double total = 0;
        for (double l : losses.data) total += dloss * l;
        return total;
    };
    loss();
    ref.cross_entropy_backward(dlogits, logits, lse, t, {}, dloss, kIgnore);
    EXPECT_LT(gradient_error(logits.data, dlogits.data, loss), kFiniteDifferenceTolerance);
}

TEST(CrossEntropy, ReferenceWeightedBackwardMatchesFiniteDifferencesOfTheWeightedSum) {
    auto& ref = reference_backend();
    const int64_t N = 6, V = 5;
    const float dloss = 0.3f;
    HostF64 logits({N, V}, 111, 2.0f), losses({N}, 0), lse({N}, 0), dlogits({N, V}, 0);
    HostF64 weights({N}, 0);
    const std::vector<float> w = loss_weights(N, 112);
    weights.data.assign(w.begin(), w.end());
    std::vector<int32_t> targets = targets_with_ignored_rows(N, V, 113);
    Tensor t(targets.data(), DType::I32, {N});
    auto loss = [&] {  // dloss * sum_n w_n * loss_n
        ref.cross_entropy_forward(losses, lse, logits, t, kIgnore);
        double total = 0;
        for (int64_t n = 0; n < N; ++n) total += dloss * weights.data[n] * losses.data[n];
        return total;
    };
    loss();
    ref.cross_entropy_backward(dlogits, logits, lse, t, weights, dloss, kIgnore);
    EXPECT_LT(gradient_error(logits.data, dlogits.data, loss), kFiniteDifferenceTolerance);
}

TEST(CrossEntropy, ZeroWeightRowsAreExactlyZeroEvenWithInfiniteLogits) {
    // A masked row drops out entirely: 0 * (softmax - onehot) of non-finite logits would be NaN.
    for (const Target& target : conformance_targets()) {
        const int64_t N = 3, V = 4;
        std::vector<float> z = random_normal(N * V, 121);
        z[1 * V + 2] = std::numeric_limits<float>::infinity();
        Pair logits = values(target, z, {N, V});
        Pair targets = ints(target, {1, 2, 3}, {N});
        Pair lse = overwritten(target, {N}, backend::stats_dtype(target.dtype));
        Pair losses = overwritten(target, {N}, backend::stats_dtype(target.dtype));
        Pair weights = pair_of(target, {1.0f, 0.0f, 0.5f}, {N}, backend::stats_dtype(target.dtype));
        Pair dlogits = overwritten(target, {N, V}, target.dtype);
        run_both(target, [&](backend::Backend& be, Side s) {
            be.cross_entropy_forward(s(losses), s(lse), s(logits), s(targets), kIgnore);
            be.cross_entropy_backward(s(dlogits), s(logits), s(lse), s(targets), s(weights), 1.0f,
                                      kIgnore);
        });
        const std::vector<float> got = dlogits.got.to_host();
        for (int64_t v = 0; v < V; ++v) EXPECT_EQ(got[1 * V + v], 0.0f) << target.label() << " v=" << v;
        for (int64_t n : {0, 2})
            for (int64_t v = 0; v < V; ++v)
                EXPECT_TRUE(std::isfinite(got[n * V + v])) << target.label() << " n=" << n;
        // Row 2 with weight 0.5 is half of what weight 1 gives.
        Pair unweighted = overwritten(target, {N, V}, target.dtype);
        run_both(target, [&](backend::Backend& be, Side s) {
            be.cross_entropy_backward(s(unweighted), s(logits), s(lse), s(targets), {}, 1.0f, kIgnore);
        });
        const std::vector<float> full = unweighted.got.to_host();
        for (int64_t v = 0; v < V; ++v)
            EXPECT_NEAR(got[2 * V + v], 0.5f * full[2 * V + v], 1e-6) << target.label() << " v=" << v;
    }
}

}  // namespace
}  // namespace tandem::testing

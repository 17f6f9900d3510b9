// The anomaly guard: non-finite values always, spikes only against enough history, robust to a
// noisy falling loss, and its state survives a checkpoint round trip.
#include "train/anomaly_guard.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "core/error.h"
#include "core/rng.h"
#include "common/test_util.h"
#include "io/atomic_file.h"

namespace tandem::train {
namespace {

// A falling loss with noise, and gradient norms that wander by tens of percent, as real ones do.
void feed_normal_steps(AnomalyGuard& guard, int n, uint64_t seed) {
    for (int i = 0; i < n; ++i) {
        const double noise = random_uniform({.seed = seed}, uint64_t(i)) - 0.5;
        const double loss = 6.0 * std::exp(-i / 200.0) + 2.0 + 0.2 * noise;
        const double norm = 1.0 * std::exp(0.3 * noise);
        ASSERT_FALSE(guard.check(loss, norm).has_value()) << "false alarm at step " << i;
        guard.accept(loss, norm);
    }
}

TEST(AnomalyGuard, NanAndInfinityAreAnomaliesFromTheFirstStep) {
    AnomalyGuard guard({});
    const double nan = std::numeric_limits<double>::quiet_NaN(), inf = std::numeric_limits<double>::infinity();
    EXPECT_EQ(guard.check(nan, 1.0).value(), "loss is NaN");
    EXPECT_EQ(guard.check(inf, 1.0).value(), "loss is infinite");
    EXPECT_EQ(guard.check(3.0, nan).value(), "gradient norm is NaN");
    EXPECT_EQ(guard.check(3.0, inf).value(), "gradient norm is infinite");
    EXPECT_FALSE(guard.check(3.0, 1.0).has_value());
}

TEST(AnomalyGuard, NoFalseAlarmsOnANoisyFallingLoss) {
    AnomalyGuard guard({.window = 50});
    feed_normal_steps(guard, 1000, 11);
}

TEST(AnomalyGuard, LossAndGradientSpikesAreCaughtOnceThereIsHistory) {
    AnomalyGuard guard({.window = 50, .zscore = 8.0});
    // Before the window has 20 steps, only non-finite values count: early training moves fast.
    EXPECT_FALSE(guard.check(100.0, 1.0).has_value());
    feed_normal_steps(guard, 100, 3);
    const auto loss_spike = guard.check(15.0, 1.0);
    ASSERT_TRUE(loss_spike.has_value());
    EXPECT_NE(loss_spike->find("loss spike"), std::string::npos) << *loss_spike;
    const auto norm_spike = guard.check(2.5, 50.0);
    ASSERT_TRUE(norm_spike.has_value());
    EXPECT_NE(norm_spike->find("gradient norm spike"), std::string::npos) << *norm_spike;
    // A drop is never a spike.
    EXPECT_FALSE(guard.check(0.5, 0.01).has_value());
}

// A quiet window: gradient norms within a few percent of 0.57, losses within 1% of 3.
void feed_quiet_steps(AnomalyGuard& guard, int n, uint64_t seed) {
    for (int i = 0; i < n; ++i) {
        const double noise = random_uniform({.seed = seed}, uint64_t(i)) - 0.5;
        guard.accept(3.0 * (1 + 0.02 * noise), 0.57 * std::exp(0.1 * noise));
    }
}

TEST(AnomalyGuard, OrdinaryFluctuationAfterAQuietWindowIsNoSpike) {
    // tandem demo, step 183: a gradient norm of 1.28 against a median of 0.57 is many robust
    // deviations up (the window is quiet), but 2.2 times the median is healthy training.
    AnomalyGuard guard({});
    feed_quiet_steps(guard, 100, 21);
    EXPECT_FALSE(guard.check(3.0, 1.28).has_value());
    EXPECT_FALSE(guard.check(3.6, 0.57).has_value());  // a loss 20% up
    // The z-score alone would have called both spikes: the factors are what keeps them out.
    AnomalyGuard z_only({.loss_factor = 1.0, .norm_factor = 1.0});
    feed_quiet_steps(z_only, 100, 21);
    EXPECT_TRUE(z_only.check(3.0, 1.28).has_value());
    EXPECT_TRUE(z_only.check(3.6, 0.57).has_value());
}

// Replays a recorded run through a guard, refusing what it calls anomalies as the skip policy
// does; returns the steps it called.
std::vector<int> replay(AnomalyGuard& guard, const nlohmann::json& run) {
    std::vector<int> called;
    for (size_t i = 0; i < run["loss"].size(); ++i) {
        const double loss = run["loss"][i], norm = run["grad_norm"][i];
        if (guard.check(loss, norm)) {
            called.push_back(int(i) + 1);
            guard.reject();
        } else {
            guard.accept(loss, norm);
        }
    }
    return called;
}

TEST(AnomalyGuard, TheDemoRunRaisesNoAnomalyWhereTheZScoreAloneRaisedThree) {
    // 341 steps of `tandem demo` as the guard saw them: healthy training, in which the z-score
    // alone refused steps 183, 326 and 336 (gradient norms 2.3, 2.5 and 1.5 times the median).
    const nlohmann::json run =
        nlohmann::json::parse(io::read_file(testing::test_data_path("train/fixtures/demo_guard_trajectory.json")));
    AnomalyGuard z_only({.loss_factor = 1.0, .norm_factor = 1.0});
    EXPECT_EQ(replay(z_only, run), run["skipped"].get<std::vector<int>>());
    AnomalyGuard guard({});
    EXPECT_EQ(replay(guard, run), std::vector<int>{});
}

TEST(AnomalyGuard, TenfoldSpikesOfLossOrGradientNormAreCaughtOnQuietAndNoisyWindows) {
    for (uint64_t seed = 1; seed <= 10; ++seed) {
        AnomalyGuard quiet({}), noisy({});
        feed_quiet_steps(quiet, 60, seed);
        feed_normal_steps(noisy, 60 + int(seed) * 7, seed);
        for (AnomalyGuard* guard : {&quiet, &noisy}) {
            // Ten times the latest accepted step's values, which lie anywhere in the window.
            const nlohmann::json state = guard->to_json();
            const double loss = state["losses"].back(), norm = std::exp(state["log_grad_norms"].back().get<double>());
            const auto loss_spike = guard->check(10 * loss, norm);
            ASSERT_TRUE(loss_spike.has_value()) << "seed " << seed;
            EXPECT_NE(loss_spike->find("loss spike"), std::string::npos) << *loss_spike;
            const auto norm_spike = guard->check(loss, 10 * norm);
            ASSERT_TRUE(norm_spike.has_value()) << "seed " << seed;
            EXPECT_NE(norm_spike->find("times the median"), std::string::npos) << *norm_spike;
            EXPECT_TRUE(guard->check(std::nan(""), norm).has_value());
            EXPECT_TRUE(guard->check(loss, std::nan("")).has_value());
        }
    }
}

TEST(AnomalyGuard, CountsAnomaliesInARowAndANormalStepResetsTheCount) {
    AnomalyGuard guard({.max_consecutive = 3});
    guard.reject();
    guard.reject();
    EXPECT_FALSE(guard.too_many_in_a_row());
    guard.reject();
    EXPECT_TRUE(guard.too_many_in_a_row());
    guard.accept(3.0, 1.0);
    EXPECT_EQ(guard.consecutive(), 0);
    EXPECT_EQ(guard.refused(), 0);
}

TEST(AnomalyGuard, AnAbsorbedSpikeJoinsTheWindowAndEndsTheRunOfRefusedUpdates) {
    AnomalyGuard guard({.window = 30, .max_consecutive = 2});
    feed_quiet_steps(guard, 30, 4);
    guard.reject();
    guard.absorb(3.0, 20.0);  // taken anyway: counts as an anomaly in a row, not as refused
    EXPECT_EQ(guard.consecutive(), 2);
    EXPECT_EQ(guard.refused(), 0);
    EXPECT_FALSE(guard.too_many_in_a_row());
    EXPECT_NEAR(std::exp(guard.to_json()["log_grad_norms"].back().get<double>()), 20.0, 1e-12);
    // A lasting change of level stops being a spike once it fills half the window.
    int n_spikes = 0;
    for (int i = 0; i < 30; ++i) {
        if (guard.check(3.0, 20.0)) {
            ++n_spikes;
            guard.absorb(3.0, 20.0);
        } else {
            guard.accept(3.0, 20.0);
        }
    }
    EXPECT_LE(n_spikes, 15);
    EXPECT_FALSE(guard.check(3.0, 20.0).has_value());
}

TEST(AnomalyGuard, StateRoundTripsThroughJsonExactly) {
    AnomalyGuard a({.window = 30});
    feed_normal_steps(a, 45, 5);
    a.reject();
    AnomalyGuard b({.window = 30});
    b.restore(nlohmann::json::parse(a.to_json().dump()));
    EXPECT_EQ(a.to_json(), b.to_json());
    EXPECT_EQ(b.consecutive(), 1);
    EXPECT_EQ(b.refused(), 1);
    for (double loss : {2.5, 3.0, 15.0}) EXPECT_EQ(a.check(loss, 1.0), b.check(loss, 1.0));
    // A checkpoint written before refused updates were counted apart: all were refused.
    nlohmann::json old = a.to_json();
    old.erase("refused");
    b.restore(old);
    EXPECT_EQ(b.refused(), 1);
}

TEST(AnomalyGuard, BadSettingsAndStateAreClearErrors) {
    EXPECT_THROW(AnomalyGuard({.window = 2}), Error);
    EXPECT_THROW(AnomalyGuard({.zscore = 0}), Error);
    EXPECT_THROW(AnomalyGuard({.max_consecutive = 0}), Error);
    try {
        AnomalyGuard({.norm_factor = 0.5});
        ADD_FAILURE() << "no error";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("anomaly_norm_factor 0.5 must be at least 1"), std::string::npos);
    }
    EXPECT_THROW(anomaly_policy_from_string("ignore"), Error);
    EXPECT_EQ(anomaly_policy_from_string("rollback"), AnomalyPolicy::Rollback);
    AnomalyGuard guard({});
    EXPECT_THROW(guard.restore({{"losses", {1.0}}, {"log_grad_norms", nlohmann::json::array()}, {"consecutive", 0}}),
                 Error);
    EXPECT_THROW(guard.restore({{"losses", "x"}}), Error);
}

}  // namespace
}  // namespace tandem::train

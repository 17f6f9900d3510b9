// The anomaly guard: non-finite values always, spikes only against enough history, robust to a
// noisy falling loss, and its state survives a checkpoint round trip.
#include "train/anomaly_guard.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "core/error.h"
#include "core/rng.h"

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

TEST(AnomalyGuard, CountsAnomaliesInARowAndANormalStepResetsTheCount) {
    AnomalyGuard guard({.max_consecutive = 3});
    guard.reject();
    guard.reject();
    EXPECT_FALSE(guard.too_many_in_a_row());
    guard.reject();
    EXPECT_TRUE(guard.too_many_in_a_row());
    guard.accept(3.0, 1.0);
    EXPECT_EQ(guard.consecutive(), 0);
}

TEST(AnomalyGuard, StateRoundTripsThroughJsonExactly) {
    AnomalyGuard a({.window = 30});
    feed_normal_steps(a, 45, 5);
    a.reject();
    AnomalyGuard b({.window = 30});
    b.restore(nlohmann::json::parse(a.to_json().dump()));
    EXPECT_EQ(a.to_json(), b.to_json());
    EXPECT_EQ(b.consecutive(), 1);
    for (double loss : {2.5, 3.0, 15.0}) EXPECT_EQ(a.check(loss, 1.0), b.check(loss, 1.0));
}

TEST(AnomalyGuard, BadSettingsAndStateAreClearErrors) {
    EXPECT_THROW(AnomalyGuard({.window = 2}), Error);
    EXPECT_THROW(AnomalyGuard({.zscore = 0}), Error);
    EXPECT_THROW(AnomalyGuard({.max_consecutive = 0}), Error);
    EXPECT_THROW(anomaly_policy_from_string("ignore"), Error);
    EXPECT_EQ(anomaly_policy_from_string("rollback"), AnomalyPolicy::Rollback);
    AnomalyGuard guard({});
    EXPECT_THROW(guard.restore({{"losses", {1.0}}, {"log_grad_norms", nlohmann::json::array()}, {"consecutive", 0}}),
                 Error);
    EXPECT_THROW(guard.restore({{"losses", "x"}}), Error);
}

}  // namespace
}  // namespace tandem::train

// The outer optimiser of local steps on one process: it waits H inner steps, then applies the
// Nesterov step computed by hand, reduces to model averaging at lr 1 without momentum, and
// still reaches the minimum of a quadratic; bad options are Errors naming the key.
#include "dist/local_sgd.h"

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "common/error_message.h"

namespace tandem::dist {
namespace {

using tandem::testing::error_message;

TEST(OuterOptimizer, SynchronisesEveryHStepsWithANesterovStepOnTheAnchor) {
    LocalCommunicator comm;
    std::vector<float> p = {1.0f, -2.0f};
    OuterOptimizer outer(LocalStepsOptions{3, 0.7, 0.9}, Tensor(p.data(), DType::F32, {2}), comm);
    std::vector<double> anchor = {1.0, -2.0}, v = {0.0, 0.0};
    const double inner[2][2] = {{0.1, 0.3}, {-0.2, 0.05}};  // each inner step's change, per round
    for (int round = 0; round < 2; ++round) {
        for (int step = 0; step < 3; ++step) {
            for (int i = 0; i < 2; ++i) p[i] += static_cast<float>(inner[round][i]);
            EXPECT_EQ(outer.after_inner_step(), step == 2) << round << " " << step;
        }
        for (int i = 0; i < 2; ++i) {
            const double g = -3 * inner[round][i];  // anchor - params after three steps
            v[i] = 0.9 * v[i] + g;
            anchor[i] -= 0.7 * (g + 0.9 * v[i]);
            EXPECT_NEAR(p[i], anchor[i], 1e-5) << round << " " << i;
        }
    }
    EXPECT_EQ(outer.inner_steps(), 6);
    const auto state = outer.state();
    ASSERT_EQ(state.size(), 2u);
    EXPECT_EQ(state[0].first, "outer_anchor");
    EXPECT_EQ(state[0].second.as<float>()[1], p[1]);
    EXPECT_EQ(state[1].first, "outer_momentum");
    EXPECT_NEAR(state[1].second.as<float>()[0], v[0], 1e-6);
}

TEST(OuterOptimizer, AtLearningRateOneWithoutMomentumItKeepsTheLocalResult) {
    LocalCommunicator comm;
    std::vector<float> p = {0.5f, 4.0f, -1.0f};
    OuterOptimizer outer(LocalStepsOptions{2, 1.0, 0.0}, Tensor(p.data(), DType::F32, {3}), comm);
    for (float& x : p) x *= 0.75f;
    outer.after_inner_step();
    for (float& x : p) x += 0.25f;
    EXPECT_TRUE(outer.after_inner_step());
    EXPECT_FLOAT_EQ(p[0], 0.625f);
    EXPECT_FLOAT_EQ(p[1], 3.25f);
    EXPECT_FLOAT_EQ(p[2], -0.5f);
}

TEST(OuterOptimizer, ReachesTheMinimumOfAQuadraticWithTheDefaultOuterStep) {
    LocalCommunicator comm;
    const std::vector<float> centre = {3.0f, -1.0f, 0.5f}, curvature = {1.0f, 4.0f, 0.25f};
    std::vector<float> x = {0.0f, 0.0f, 0.0f};
    OuterOptimizer outer(LocalStepsOptions{5, 0.7, 0.9}, Tensor(x.data(), DType::F32, {3}), comm);
    for (int step = 0; step < 1000; ++step) {
        for (int i = 0; i < 3; ++i) x[i] -= 0.1f * curvature[i] * (x[i] - centre[i]);  // inner SGD
        outer.after_inner_step();
    }
    for (int i = 0; i < 3; ++i) EXPECT_NEAR(x[i], centre[i], 1e-3) << i;
}

TEST(OuterOptimizer, RejectsBadOptionsAndParameters) {
    EXPECT_NE(error_message([] { LocalStepsOptions{0, 0.7, 0.9}.validate(); }).find("'local_steps' must be at least 1, got 0"),
              std::string::npos);
    EXPECT_NE(error_message([] { LocalStepsOptions{4, -1, 0.9}.validate(); }).find("'outer_lr' must be positive, got -1"),
              std::string::npos);
    EXPECT_NE(error_message([] { LocalStepsOptions{4, 0.7, 1.0}.validate(); }).find("'outer_momentum' must be in [0, 1)"),
              std::string::npos);
    LocalCommunicator comm;
    std::vector<uint16_t> h(4);
    EXPECT_NE(error_message([&] { OuterOptimizer(LocalStepsOptions{}, Tensor(h.data(), DType::BF16, {4}), comm); })
                  .find("the parameters are bf16[4] on cpu"),
              std::string::npos);
}

}  // namespace
}  // namespace tandem::dist

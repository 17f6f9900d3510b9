// The cpu backend's vectorisable e^x (backend/cpu/simd.h) against std::exp in double.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "backend/cpu/simd.h"

namespace tandem::backend::cpu {
namespace {

TEST(CpuExp, IsWithinAFewUlpOfExpOverTheWholeRange) {
    double worst = 0;
    for (double x = -87.0; x <= 88.0; x += 1.0 / 1024.0) {
        const float xf = static_cast<float>(x);
        const double want = std::exp(double(xf));
        worst = std::max(worst, std::abs(exp_approx(xf) - want) / want);
    }
    EXPECT_LT(worst, 2.5e-7);  // 4 ulp of f32 (a few roundings in the polynomial and scaling)
}

TEST(CpuExp, UnderflowsToZeroSaturatesAndKeepsNan) {
    EXPECT_EQ(exp_approx(-100.0f), 0.0f);
    EXPECT_EQ(exp_approx(-std::numeric_limits<float>::infinity()), 0.0f);
    EXPECT_TRUE(std::isfinite(exp_approx(1000.0f)));
    EXPECT_TRUE(std::isnan(exp_approx(std::numeric_limits<float>::quiet_NaN())));
    EXPECT_EQ(exp_approx(0.0f), 1.0f);
    EXPECT_LT(sigmoid_approx(-200.0f), 1e-38f);  // 1 / (1 + e^88): the saturated exp
    EXPECT_EQ(sigmoid_approx(200.0f), 1.0f);
}

}  // namespace
}  // namespace tandem::backend::cpu

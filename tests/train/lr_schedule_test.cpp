#include "train/lr_schedule.h"

#include <gtest/gtest.h>

namespace tandem::train {
namespace {

TEST(LrSchedule, WarmsUpLinearlyThenDecaysByCosineToTheMinimum) {
    LrSchedule s{1e-3, 1e-4, 10, 110};
    EXPECT_DOUBLE_EQ(s.lr_at(1), 1e-4);
    EXPECT_DOUBLE_EQ(s.lr_at(10), 1e-3);
    EXPECT_NEAR(s.lr_at(60), 0.5 * (1e-3 + 1e-4), 1e-12);  // halfway through the decay
    EXPECT_DOUBLE_EQ(s.lr_at(110), 1e-4);
    EXPECT_DOUBLE_EQ(s.lr_at(500), 1e-4);
    for (int step = 11; step < 110; ++step) EXPECT_LE(s.lr_at(step + 1), s.lr_at(step));
}

TEST(LrSchedule, NoWarmupStartsAtThePeak) {
    LrSchedule s{2e-3, 0, 0, 100};
    EXPECT_NEAR(s.lr_at(0), 2e-3, 1e-15);
    EXPECT_GT(s.lr_at(1), 1.99e-3);
}

}  // namespace
}  // namespace tandem::train

// The watchdog's limit follows the median step, and a loop that stops beating is reported once.
#include "train/watchdog.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>

namespace tandem::train {
namespace {

TEST(Watchdog, LimitIsTheLargerOfTheFloorAndFactorTimesTheMedianStep) {
    Watchdog dog(0, 2.0, [](const std::string&) {});  // factor 0: no thread, the arithmetic only
    EXPECT_EQ(dog.limit_seconds(), 10.0);  // no median yet: 5 x the floor
    Watchdog watched(10, 2.0, [](const std::string&) {});
    for (double s : {0.1, 0.5, 0.3}) watched.step_took(s);
    EXPECT_EQ(watched.limit_seconds(), 3.0);  // 10 x the median 0.3
    for (double s : {0.05, 0.05, 0.05, 0.05}) watched.step_took(s);
    EXPECT_EQ(watched.limit_seconds(), 2.0);  // 10 x 0.05 is under the floor
}

TEST(Watchdog, ReportsAHungPhaseOnceWithWhereItHung) {
    std::atomic<int> calls = 0;
    std::string diagnostic;
    {
        Watchdog dog(10, 0.02, [&](const std::string& d) {
            diagnostic = d;
            ++calls;
        });
        dog.beat("backward", 42);
        for (int i = 0; i < 200 && calls == 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(25));
    }
    ASSERT_EQ(calls, 1);
    EXPECT_NE(diagnostic.find("step 42"), std::string::npos) << diagnostic;
    EXPECT_NE(diagnostic.find("'backward'"), std::string::npos) << diagnostic;
}

}  // namespace
}  // namespace tandem::train

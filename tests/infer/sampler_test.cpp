#include "infer/sampler.h"

#include <gtest/gtest.h>

#include <cmath>
#include <map>

#include "core/error.h"

namespace tandem::infer {
namespace {

TEST(Sampler, GreedyTakesTheLargestLogitAndTheLowestIdOnTies) {
    Sampler s({0.0f, 0, 1.0f, 1});
    std::vector<float> logits = {0.1f, 3.0f, -2.0f, 3.0f};
    EXPECT_EQ(s.sample(logits, 0), 1);
}

TEST(Sampler, SameSeedAndPositionGiveTheSameToken) {
    std::vector<float> logits(50);
    for (int i = 0; i < 50; ++i) logits[i] = std::sin(i * 1.3f);
    Sampler a({1.0f, 0, 1.0f, 42}), b({1.0f, 0, 1.0f, 42});
    for (int pos = 0; pos < 100; ++pos) EXPECT_EQ(a.sample(logits, pos), b.sample(logits, pos));
}

TEST(Sampler, FrequenciesFollowTheSoftmax) {
    std::vector<float> logits = {0.0f, std::log(3.0f)};  // probabilities 1/4 and 3/4
    Sampler s({1.0f, 0, 1.0f, 7});
    int ones = 0;
    const int n = 20000;
    for (int pos = 0; pos < n; ++pos) ones += s.sample(logits, pos);
    EXPECT_NEAR(double(ones) / n, 0.75, 0.015);
}

TEST(Sampler, TopKAndTopPOnlyDrawFromTheHead) {
    std::vector<float> logits = {5.0f, 4.0f, 3.0f, 0.0f, -1.0f};
    Sampler k({1.0f, 2, 1.0f, 3});
    Sampler p({1.0f, 0, 0.5f, 3});  // token 0 alone has ~0.66 of the mass
    for (int pos = 0; pos < 500; ++pos) {
        EXPECT_LT(k.sample(logits, pos), 2);
        EXPECT_EQ(p.sample(logits, pos), 0);
    }
}

TEST(Sampler, RejectsOutOfRangeOptionsByName) {
    try {
        Sampler({-1.0f, 0, 1.0f, 0});
        FAIL();
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("--temperature"), std::string::npos);
    }
    EXPECT_THROW(Sampler({1.0f, -3, 1.0f, 0}), Error);
    EXPECT_THROW(Sampler({1.0f, 0, 0.0f, 0}), Error);
    EXPECT_THROW(Sampler({1.0f, 0, 1.5f, 0}), Error);
}

}  // namespace
}  // namespace tandem::infer

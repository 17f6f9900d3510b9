#include "core/rng.h"

#include <gtest/gtest.h>

#include <cmath>

namespace tandem {
namespace {

// Known-answer vectors of Philox4x32-10 from the Random123 distribution (tests/kat_vectors).
TEST(Philox, MatchesPublishedKnownAnswers) {
    EXPECT_EQ(philox4x32_10({0, 0, 0, 0}, {0, 0}),
              (PhiloxCounter{0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}));
    EXPECT_EQ(philox4x32_10({0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff},
                            {0xffffffff, 0xffffffff}),
              (PhiloxCounter{0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd}));
    EXPECT_EQ(philox4x32_10({0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344},
                            {0xa4093822, 0x299f31d0}),
              (PhiloxCounter{0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}));
}

TEST(Rng, DrawIsAPureFunctionOfKeyAndIndex) {
    RngKey key{42, RngPurpose::Init, 0, 7};
    EXPECT_EQ(random_u32(key, 12345), random_u32(key, 12345));
    EXPECT_EQ(random_normal(key, 99), random_normal(key, 99));
    RngKey other_step = key;
    other_step.step = 8;
    RngKey other_purpose = key;
    other_purpose.purpose = RngPurpose::DataOrder;
    RngKey other_rank = key;
    other_rank.rank = 1;
    EXPECT_NE(random_u32(key, 0), random_u32(other_step, 0));
    EXPECT_NE(random_u32(key, 0), random_u32(other_purpose, 0));
    EXPECT_NE(random_u32(key, 0), random_u32(other_rank, 0));
}

TEST(Rng, FillContinuesAtAnOffset) {
    RngKey key{3};
    std::vector<float> whole(100), tail(60);
    fill_normal(whole.data(), 100, key);
    fill_normal(tail.data(), 60, key, 40);
    for (int i = 0; i < 60; ++i) EXPECT_EQ(whole[40 + i], tail[i]);
}

TEST(Rng, UniformAndNormalHaveTheRightMoments) {
    const int n = 200000;
    RngKey key{1234, RngPurpose::Init, 0, 0};
    std::vector<float> u(n), z(n);
    fill_uniform(u.data(), n, key);
    fill_normal(z.data(), n, key);
    double su = 0, sz = 0, szz = 0;
    for (int i = 0; i < n; ++i) {
        ASSERT_GE(u[i], 0.0f);
        ASSERT_LT(u[i], 1.0f);
        ASSERT_TRUE(std::isfinite(z[i]));
        su += u[i];
        sz += z[i];
        szz += double(z[i]) * z[i];
    }
    EXPECT_NEAR(su / n, 0.5, 0.005);
    EXPECT_NEAR(sz / n, 0.0, 0.01);
    EXPECT_NEAR(szz / n, 1.0, 0.01);
}

}  // namespace
}  // namespace tandem

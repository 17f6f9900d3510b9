#include "core/dtype.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "core/error.h"

namespace tandem {
namespace {

TEST(Bf16, RoundsToNearestEven) {
    // 1 + 2^-8 lies exactly halfway between bf16 neighbours 1 and 1 + 2^-7: ties go to even (1).
    EXPECT_EQ(bf16_from_f32(1.0f + 0x1p-8f), 0x3f80);
    // 1 + 3 * 2^-8 lies halfway between 1 + 2^-7 (odd) and 1 + 2^-6 (even): rounds up.
    EXPECT_EQ(bf16_from_f32(1.0f + 3 * 0x1p-8f), 0x3f82);
    // Just above half rounds up.
    EXPECT_EQ(bf16_from_f32(1.0f + 0x1p-8f + 0x1p-20f), 0x3f81);
    EXPECT_EQ(f32_from_bf16(0x3f80), 1.0f);
    EXPECT_EQ(f32_from_bf16(bf16_from_f32(-2.5f)), -2.5f);
}

TEST(Bf16, KeepsSpecialValues) {
    EXPECT_TRUE(std::isnan(f32_from_bf16(bf16_from_f32(std::numeric_limits<float>::quiet_NaN()))));
    EXPECT_EQ(f32_from_bf16(bf16_from_f32(INFINITY)), INFINITY);
    EXPECT_EQ(f32_from_bf16(bf16_from_f32(-INFINITY)), -INFINITY);
    // The largest finite f32 rounds to infinity in bf16 (as on GPUs).
    EXPECT_EQ(f32_from_bf16(bf16_from_f32(std::numeric_limits<float>::max())), INFINITY);
}

TEST(F16, RoundTripsEveryHalfValue) {
    for (uint32_t h = 0; h < 0x10000; ++h) {
        const float x = f32_from_f16(static_cast<uint16_t>(h));
        if (std::isnan(x)) continue;
        ASSERT_EQ(f16_from_f32(x), h) << "half bits " << h;
    }
}

TEST(F16, RoundsToNearestEvenIncludingSubnormalsAndOverflow) {
    EXPECT_EQ(f16_from_f32(1.0f + 0x1p-11f), 0x3c00);          // tie, to even
    EXPECT_EQ(f16_from_f32(1.0f + 3 * 0x1p-11f), 0x3c02);      // tie, to even (up)
    EXPECT_EQ(f16_from_f32(0x1p-24f), 0x0001);                 // smallest subnormal
    EXPECT_EQ(f16_from_f32(0x1p-25f), 0x0000);                 // half of it: tie to even 0
    EXPECT_EQ(f16_from_f32(0x1.8p-25f), 0x0001);               // above half rounds up
    EXPECT_EQ(f16_from_f32(65504.0f), 0x7bff);                 // largest finite
    EXPECT_EQ(f16_from_f32(65520.0f), 0x7c00);                 // rounds to infinity
    EXPECT_EQ(f16_from_f32(-0.0f), 0x8000);
    EXPECT_EQ(f32_from_f16(0x3555), 0x1.554p-2f);
}

TEST(DType, NamesRoundTripAndUnknownNamesAreErrors) {
    for (DType d : {DType::F32, DType::F64, DType::BF16, DType::F16, DType::I32})
        EXPECT_EQ(dtype_from_name(dtype_name(d)), d);
    try {
        dtype_from_name("f8");
        FAIL();
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("'f8'"), std::string::npos);
    }
}

}  // namespace
}  // namespace tandem

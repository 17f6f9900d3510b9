#include "core/quant.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "core/error.h"

namespace tandem {
namespace {

std::vector<float> random_values(int64_t n, uint32_t seed) {
    std::mt19937 gen(seed);
    std::normal_distribution<float> dist(0.0f, 1.0f);
    std::vector<float> x(n);
    for (float& v : x) v = dist(gen);
    return x;
}

TEST(DTypeBlocks, SizesAreGgmls) {
    EXPECT_EQ(dtype_block_values(DType::Q8_0), 32);
    EXPECT_EQ(dtype_bytes(DType::Q8_0, 64), 68u);
    EXPECT_EQ(dtype_bytes(DType::Q4_0, 64), 36u);
    EXPECT_EQ(dtype_bytes(DType::BF16, 3), 6u);
    EXPECT_FALSE(is_block_dtype(DType::F16));
    EXPECT_EQ(dtype_from_name("q4_0"), DType::Q4_0);
    EXPECT_THROW(dtype_from_name("q5_k"), Error);
}

TEST(Quant, Q8_0BlockLayoutIsScaleThenInt8s) {
    std::vector<float> x(32, 0.0f);
    x[0] = 127.0f;
    x[1] = -63.4f;
    x[5] = 0.5f;  // rounds half away from zero, as roundf
    unsigned char block[34];
    quantize_q8_0(block, x.data(), 32);
    uint16_t d;
    std::memcpy(&d, block, 2);
    EXPECT_EQ(f32_from_f16(d), 1.0f);
    EXPECT_EQ(static_cast<int8_t>(block[2]), 127);
    EXPECT_EQ(static_cast<int8_t>(block[3]), -63);
    EXPECT_EQ(static_cast<int8_t>(block[7]), 1);
    EXPECT_EQ(static_cast<int8_t>(block[4]), 0);
}

TEST(Quant, Q4_0PacksValueJAndJPlus16InOneByte) {
    std::vector<float> x(32, 0.0f);
    x[0] = -8.0f;   // the value of largest magnitude: d = -8 / -8 = 1, nibble 0
    x[16] = 7.0f;   // nibble 15
    x[1] = 3.0f;    // nibble 11
    unsigned char block[18];
    quantize_q4_0(block, x.data(), 32);
    uint16_t d;
    std::memcpy(&d, block, 2);
    EXPECT_EQ(f32_from_f16(d), 1.0f);
    EXPECT_EQ(block[2], 0x00 | (15 << 4));
    EXPECT_EQ(block[3], 11 | (8 << 4));
    std::vector<float> y(32);
    dequantize_q4_0(y.data(), block, 32);
    EXPECT_EQ(y[0], -8.0f);
    EXPECT_EQ(y[16], 7.0f);
    EXPECT_EQ(y[1], 3.0f);
    EXPECT_EQ(y[17], 0.0f);
}

TEST(Quant, RoundTripErrorIsWithinOneStep) {
    const int64_t n = 32 * 257;
    const std::vector<float> x = random_values(n, 3);
    for (DType dtype : {DType::Q8_0, DType::Q4_0}) {
        std::vector<unsigned char> q(dtype_bytes(dtype, n));
        std::vector<float> y(n);
        convert_values(q.data(), dtype, x.data(), DType::F32, n);
        convert_values(y.data(), DType::F32, q.data(), dtype, n);
        // Q4_0 spans [-8, 7] steps with the largest magnitude at -8: a value of the other sign
        // near that magnitude clamps at 7, a whole step away.
        const float steps = dtype == DType::Q8_0 ? 0.5f / 127.0f : 1.0f / 8.0f;
        for (int64_t b = 0; b < n / 32; ++b) {
            float amax = 0;
            for (int j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(x[b * 32 + j]));
            const float tol = steps * amax * 1.01f + amax * 1e-3f;  // + the scale's f16 rounding
            for (int j = 0; j < 32; ++j)
                ASSERT_NEAR(y[b * 32 + j], x[b * 32 + j], tol) << dtype_name(dtype) << " block " << b;
        }
    }
}

TEST(Quant, AllZeroBlockStaysZero) {
    std::vector<float> x(32, 0.0f), y(32, 1.0f);
    unsigned char q[34];
    quantize_q8_0(q, x.data(), 32);
    dequantize_q8_0(y.data(), q, 32);
    for (float v : y) EXPECT_EQ(v, 0.0f);
}

TEST(Quant, ConvertsBetweenEveryPairThroughF32) {
    const int64_t n = 4096 + 64;  // crosses the internal chunk
    const std::vector<float> x = random_values(n, 9);
    const DType all[] = {DType::F32, DType::F64, DType::BF16, DType::F16, DType::Q8_0, DType::Q4_0};
    for (DType a : all) {
        std::vector<unsigned char> in(dtype_bytes(a, n));
        convert_values(in.data(), a, x.data(), DType::F32, n);
        std::vector<float> via_a(n);
        convert_values(via_a.data(), DType::F32, in.data(), a, n);
        for (DType b : all) {
            std::vector<unsigned char> out(dtype_bytes(b, n));
            convert_values(out.data(), b, in.data(), a, n);
            // a -> b equals a -> f32 -> b exactly.
            std::vector<unsigned char> want(dtype_bytes(b, n));
            convert_values(want.data(), b, via_a.data(), DType::F32, n);
            ASSERT_EQ(out, want) << dtype_name(a) << " -> " << dtype_name(b);
        }
    }
}

}  // namespace
}  // namespace tandem

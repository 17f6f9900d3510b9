// What lets the cpu kernels' inner loops use AVX2/AVX-512 from one portable binary:
// TANDEM_CPU_CLONES compiles a function for several x86-64 levels and picks one at load time,
// and exp_approx is an e^x the compiler can vectorise (std::exp is a scalar libm call).
#pragma once

#include <bit>
#include <cstdint>

// Put this on the per-row function that the OpenMP loop calls, never on the function that holds
// the `omp parallel` pragma (the clones then would each carry their own parallel region).
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define TANDEM_CPU_CLONES \
    __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define TANDEM_CPU_CLONES
#endif

namespace tandem::backend::cpu {

// e^x in f32 with a relative error of a few 1e-8 (checked against std::exp in
// tests/backend/cpu_exp_test.cpp). Range reduction x = n ln2 + r with |r| <= ln2/2 (ln2 split in
// a high part exact in f32 and a low correction), e^r by its Taylor series to r^7 (truncation
// below 1e-8 on that interval), and 2^n built in the exponent bits. Inputs below -87.3 give 0,
// above 88 saturate at e^88 (no inf), NaN stays NaN. Branch-free, so loops over it vectorise.
inline float exp_approx(float x) {
    constexpr float kLog2e = 1.44269504088896341f;
    constexpr float kLn2High = 0.693359375f;          // 8 significant bits: n * kLn2High is exact
    constexpr float kLn2Low = -2.12194440054691e-4f;  // ln 2 - kLn2High
    constexpr float kRoundToInt = 12582912.0f;        // 1.5 * 2^23: adding it rounds to integer
    const float xc = x < -87.0f ? -87.0f : (x > 88.0f ? 88.0f : x);
    const float n = (xc * kLog2e + kRoundToInt) - kRoundToInt;
    const float r = (xc - n * kLn2High) - n * kLn2Low;
    float p = 1.0f / 5040.0f;
    p = p * r + 1.0f / 720.0f;
    p = p * r + 1.0f / 120.0f;
    p = p * r + 1.0f / 24.0f;
    p = p * r + 1.0f / 6.0f;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    const float two_to_n = std::bit_cast<float>((static_cast<int32_t>(n) + 127) << 23);
    const float result = x < -87.3f ? 0.0f : p * two_to_n;
    return x == x ? result : x;
}

// 1 / (1 + e^-x), exact limits 0 and 1 far out.
inline float sigmoid_approx(float x) {
    return 1.0f / (1.0f + exp_approx(-x));
}

}  // namespace tandem::backend::cpu

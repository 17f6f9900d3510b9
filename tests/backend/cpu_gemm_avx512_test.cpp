// tandem's AVX-512 product (backend/cpu/gemm_avx512.h) against a product summed in double, on
// random matrices whose shapes cross every edge of its blocking: partial register tiles, partial
// K slices, several column blocks, the all-of-K order, padded leading dimensions; every
// transpose; overwrite and accumulate. Also: the same bits for any thread count, and the
// TANDEM_CPU_GEMM choice. Skipped, saying so, on CPUs without AVX-512.
#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <vector>

#include "backend/cpu/gemm_avx512.h"
#include "common/test_util.h"
#include "core/error.h"

namespace tandem::backend::cpu {
namespace {

struct Case {
    int64_t M, N, K;
};

// A stored matrix of `rows` x `cols` with row stride cols + pad, random, padding NaN (so that a
// read past the logical edge shows up in the result).
struct Stored {
    int64_t rows, cols, ld;
    std::vector<float> data;
    Stored(int64_t r, int64_t c, int64_t pad, uint64_t seed) : rows(r), cols(c), ld(c + pad) {
        const std::vector<float> values = testing::random_normal(r * c, seed);
        data.assign(static_cast<size_t>(r * ld), std::nanf(""));
        for (int64_t i = 0; i < r; ++i)
            for (int64_t j = 0; j < c; ++j) data[i * ld + j] = values[i * c + j];
    }
    float at(int64_t i, int64_t j) const { return data[i * ld + j]; }
};

// Checks C = op(A) op(B) + beta C0 for one case and one choice of transposes, against double.
void check_product(const Case& c, bool trans_a, bool trans_b, float beta, int64_t pad) {
    SCOPED_TRACE(::testing::Message()
                 << "M " << c.M << " N " << c.N << " K " << c.K << " ta " << trans_a << " tb "
                 << trans_b << " beta " << beta << " pad " << pad);
    const Stored a = trans_a ? Stored(c.K, c.M, pad, 1) : Stored(c.M, c.K, pad, 1);
    const Stored b = trans_b ? Stored(c.N, c.K, pad, 2) : Stored(c.K, c.N, pad, 2);
    const int64_t ldc = c.N + pad;
    std::vector<float> out(static_cast<size_t>(c.M * ldc), 0.0f);
    const std::vector<float> start = testing::random_normal(c.M * ldc, 3);
    if (beta != 0.0f)
        out = start;
    else
        std::fill(out.begin(), out.end(), std::nanf(""));  // beta 0 must not read C
    gemm_avx512(trans_a, trans_b, c.M, c.N, c.K, a.data.data(), a.ld, b.data.data(), b.ld, beta,
                out.data(), ldc);
    int64_t bad = 0;
    for (int64_t i = 0; i < c.M; ++i)
        for (int64_t j = 0; j < c.N; ++j) {
            double want = beta != 0.0f ? start[i * ldc + j] : 0.0, magnitude = std::abs(want);
            for (int64_t k = 0; k < c.K; ++k) {
                const double x = trans_a ? a.at(k, i) : a.at(i, k);
                const double y = trans_b ? b.at(j, k) : b.at(k, j);
                want += x * y;
                magnitude += std::abs(x * y);
            }
            const double got = out[i * ldc + j];
            // f32 sums: a few units of rounding per term at most, relative to the terms' size.
            if (!(std::abs(got - want) <= 1e-6 * magnitude + 1e-30) && bad++ < 5)
                ADD_FAILURE() << "C[" << i << ", " << j << "] = " << got << ", want " << want;
        }
    EXPECT_EQ(bad, 0);
}

class GemmAvx512 : public ::testing::Test {
   protected:
    void SetUp() override {
        if (!gemm_avx512_supported()) GTEST_SKIP() << "this CPU has no AVX-512 (F, VL, DQ)";
    }
};

TEST_F(GemmAvx512, MatchesADoubleProductAcrossTheEdgesOfItsBlocking) {
    const Case cases[] = {
        {1, 1, 1},        // less than one tile in every direction
        {8, 48, 16},      // exactly one tile
        {9, 49, 17},      // one past a tile
        {37, 100, 513},   // a partial second K slice
        {130, 60, 40},    // more rows than one packed block (128)
        {20, 1600, 30},   // two column blocks (1536)
        {300, 50, 2100},  // all of K packed first, several slices
    };
    for (const Case& c : cases)
        for (bool ta : {false, true})
            for (bool tb : {false, true})
                for (float beta : {0.0f, 1.0f}) check_product(c, ta, tb, beta, /*pad=*/0);
}

TEST_F(GemmAvx512, HonoursLeadingDimensionsWiderThanTheMatrix) {
    for (bool ta : {false, true})
        for (bool tb : {false, true}) check_product({21, 53, 70}, ta, tb, 1.0f, /*pad=*/5);
}

TEST_F(GemmAvx512, GivesTheSameBitsForAnyThreadCount) {
    const int64_t M = 203, N = 170, K = 600;
    const std::vector<float> a = testing::random_normal(M * K, 4),
                             b = testing::random_normal(K * N, 5);
    std::vector<std::vector<float>> results;
    const int saved = omp_get_max_threads();
    for (int threads : {1, 2, 3, 7}) {
        omp_set_num_threads(threads);
        std::vector<float> c(M * N);
        gemm_avx512(false, false, M, N, K, a.data(), K, b.data(), N, 0.0f, c.data(), N);
        results.push_back(c);
    }
    omp_set_num_threads(saved);
    for (size_t i = 1; i < results.size(); ++i) EXPECT_EQ(results[i], results[0]) << i;
}

TEST(GemmAvx512Choice, FollowsTandemCpuGemmAndRejectsWhatItCannotDo) {
    EXPECT_TRUE(gemm_avx512_choice(nullptr, true));
    EXPECT_FALSE(gemm_avx512_choice(nullptr, false));
    EXPECT_TRUE(gemm_avx512_choice("auto", true));
    EXPECT_FALSE(gemm_avx512_choice("openblas", true));
    EXPECT_TRUE(gemm_avx512_choice("tandem", true));
    EXPECT_THROW(gemm_avx512_choice("tandem", false), Error);
    EXPECT_THROW(gemm_avx512_choice("mkl", true), Error);
    EXPECT_THROW(gemm_avx512_choice("", true), Error);
}

}  // namespace
}  // namespace tandem::backend::cpu

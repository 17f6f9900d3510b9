// tandem's own product (backend/cpu/gemm.h), each of its kernels, against a product summed in
// double, on random matrices whose shapes cross every edge of both kernels' blocking: partial
// register tiles, partial K slices, several row and column blocks, the all-of-K order, padded
// leading dimensions; every transpose; overwrite and accumulate. Also: the same bits for any
// thread count, products against an operand packed once (pack_b, gemm_packed_b), and the
// TANDEM_CPU_GEMM choice. A kernel this CPU cannot run is skipped, saying so.
#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <cstdint>
#include <vector>

#include "backend/cpu/gemm.h"
#include "common/test_util.h"
#include "core/error.h"
#include "own_kernels.h"

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

// Expects C (row stride ldc) = op(A) op(B) + beta C0 for a case, op(B) the leading [K, N] block
// of b, against sums in double.
void expect_product(const std::vector<float>& out, int64_t ldc, const Case& c, const Stored& a,
                    bool trans_a, const Stored& b, bool trans_b, float beta,
                    const std::vector<float>& start) {
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

// C's starting values: random for beta 1, NaN for beta 0 (which must not read C).
std::vector<float> starting_c(int64_t M, int64_t ldc, float beta) {
    return beta != 0.0f ? testing::random_normal(M * ldc, 3)
                        : std::vector<float>(static_cast<size_t>(M * ldc), std::nanf(""));
}

// Checks C = op(A) op(B) + beta C0 for one case and one choice of transposes, against double.
void check_product(GemmKernel kernel, const Case& c, bool trans_a, bool trans_b, float beta,
                   int64_t pad) {
    SCOPED_TRACE(::testing::Message()
                 << "M " << c.M << " N " << c.N << " K " << c.K << " ta " << trans_a << " tb "
                 << trans_b << " beta " << beta << " pad " << pad);
    const Stored a = trans_a ? Stored(c.K, c.M, pad, 1) : Stored(c.M, c.K, pad, 1);
    const Stored b = trans_b ? Stored(c.N, c.K, pad, 2) : Stored(c.K, c.N, pad, 2);
    const int64_t ldc = c.N + pad;
    const std::vector<float> start = starting_c(c.M, ldc, beta);
    std::vector<float> out = start;
    own_gemm(kernel, trans_a, trans_b, c.M, c.N, c.K, a.data.data(), a.ld, b.data.data(), b.ld,
             beta, out.data(), ldc);
    expect_product(out, ldc, c, a, trans_a, b, trans_b, beta, start);
}

// The same through pack_b and gemm_packed_b, with op(B) packed `more_k` and `more_n` larger
// than the product uses (the product takes its leading block, as attention takes a prefix of
// a head's keys).
void check_packed_product(GemmKernel kernel, const Case& c, bool trans_a, bool trans_b,
                          float beta, int64_t more_k, int64_t more_n) {
    SCOPED_TRACE(::testing::Message()
                 << "packed: M " << c.M << " N " << c.N << " K " << c.K << " ta " << trans_a
                 << " tb " << trans_b << " beta " << beta << " packed K + " << more_k
                 << ", N + " << more_n);
    const int64_t packed_k = c.K + more_k, packed_n = c.N + more_n;
    const Stored a = trans_a ? Stored(c.K, c.M, 3, 1) : Stored(c.M, c.K, 3, 1);
    const Stored b = trans_b ? Stored(packed_n, packed_k, 2, 2) : Stored(packed_k, packed_n, 2, 2);
    std::vector<float> panels(static_cast<size_t>(packed_b_floats(kernel, packed_k, packed_n)) +
                              16);  // room to align to 64 bytes
    float* aligned = panels.data() + (16 - reinterpret_cast<uintptr_t>(panels.data()) / 4 % 16) % 16;
    pack_b(kernel, trans_b, packed_k, packed_n, b.data.data(), b.ld, aligned);
    const int64_t ldc = c.N + 1;
    const std::vector<float> start = starting_c(c.M, ldc, beta);
    std::vector<float> out = start;
    gemm_packed_b(kernel, trans_a, c.M, c.N, c.K, a.data.data(), a.ld,
                  {aligned, packed_k, packed_n}, beta, out.data(), ldc);
    expect_product(out, ldc, c, a, trans_a, b, trans_b, beta, start);
}

class OwnGemm : public OnEachOwnKernel {};

TEST_P(OwnGemm, MatchesADoubleProductAcrossTheEdgesOfItsBlocking) {
    // The AVX-512 kernel's tile is 8 x 48, its slices at most 512 long, its blocks 128 rows and
    // 1536 columns; the AVX2 kernel's 6 x 16, 384, 168 and 4080.
    const Case cases[] = {
        {1, 1, 1},        // less than one tile in every direction
        {8, 48, 16},      // exactly one tile (AVX-512), several (AVX2)
        {6, 16, 8},       // exactly one tile (AVX2)
        {9, 49, 17},      // one past a tile
        {37, 100, 513},   // two K slices of equal length
        {130, 60, 40},    // more rows than one packed block (128)
        {170, 20, 400},   // more rows than one packed block (168), a second slice
        {20, 1600, 30},   // two column blocks (1536)
        {300, 50, 2100},  // all of K packed first, several slices
    };
    for (const Case& c : cases)
        for (bool ta : {false, true})
            for (bool tb : {false, true})
                for (float beta : {0.0f, 1.0f})
                    check_product(GetParam(), c, ta, tb, beta, /*pad=*/0);
}

TEST_P(OwnGemm, HandlesMoreColumnsThanOneBlockOfTheAvx2Kernel) {
    check_product(GetParam(), {13, 4100, 24}, false, true, 0.0f, /*pad=*/0);
    check_product(GetParam(), {13, 4100, 24}, false, false, 1.0f, /*pad=*/0);
}

TEST_P(OwnGemm, HonoursLeadingDimensionsWiderThanTheMatrix) {
    for (bool ta : {false, true})
        for (bool tb : {false, true})
            check_product(GetParam(), {21, 53, 70}, ta, tb, 1.0f, /*pad=*/5);
}

TEST_P(OwnGemm, GivesTheSameBitsForAnyThreadCount) {
    const int64_t M = 203, N = 170, K = 600;
    const std::vector<float> a = testing::random_normal(M * K, 4),
                             b = testing::random_normal(K * N, 5);
    std::vector<std::vector<float>> results;
    const int saved = omp_get_max_threads();
    for (int threads : {1, 2, 3, 7}) {
        omp_set_num_threads(threads);
        std::vector<float> c(M * N);
        own_gemm(GetParam(), false, false, M, N, K, a.data(), K, b.data(), N, 0.0f, c.data(), N);
        results.push_back(c);
    }
    omp_set_num_threads(saved);
    for (size_t i = 1; i < results.size(); ++i) EXPECT_EQ(results[i], results[0]) << i;
}

TEST_P(OwnGemm, MultipliesByALeadingBlockOfAPackedOperand) {
    // Shapes of attention's products (64 query rows, heads of 48 and 64, up to 1030 keys) and
    // the edges: partial tiles, several K slices, a packed operand larger in K, in N, or both.
    const Case cases[] = {{1, 1, 1}, {64, 200, 48}, {64, 64, 200}, {130, 48, 64},
                          {37, 70, 400}, {9, 49, 1030}};
    for (const Case& c : cases)
        for (bool ta : {false, true})
            for (bool tb : {false, true})
                for (float beta : {0.0f, 1.0f}) {
                    check_packed_product(GetParam(), c, ta, tb, beta, 0, 0);
                    check_packed_product(GetParam(), c, ta, tb, beta, 390, 33);
                }
}

INSTANTIATE_TEST_SUITE_P(Kernels, OwnGemm, kOwnKernels, own_kernel_name);

TEST(OwnGemmChoice, FollowsTandemCpuGemmAndRejectsWhatItCannotDo) {
    using enum GemmKernel;
    EXPECT_EQ(gemm_kernel_choice(nullptr, avx512), avx512);
    EXPECT_EQ(gemm_kernel_choice(nullptr, avx2), avx2);
    EXPECT_EQ(gemm_kernel_choice(nullptr, openblas), openblas);
    EXPECT_EQ(gemm_kernel_choice("auto", avx2), avx2);
    EXPECT_EQ(gemm_kernel_choice("openblas", avx512), openblas);
    EXPECT_EQ(gemm_kernel_choice("tandem", avx512), avx512);
    EXPECT_EQ(gemm_kernel_choice("tandem", avx2), avx2);
    EXPECT_THROW(gemm_kernel_choice("tandem", openblas), Error);
    EXPECT_THROW(gemm_kernel_choice("mkl", avx2), Error);
    EXPECT_THROW(gemm_kernel_choice("", avx2), Error);
}

TEST(OwnGemmChoice, EveryCpuWithAvx512RunsTheAvx2KernelToo) {
    if (gemm_kernel_supported() == GemmKernel::avx512)
        EXPECT_TRUE(gemm_kernel_runs(GemmKernel::avx2));
    EXPECT_TRUE(gemm_kernel_runs(GemmKernel::openblas));
}

}  // namespace
}  // namespace tandem::backend::cpu

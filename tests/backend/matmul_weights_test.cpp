// matmul_weights, a product with weights in their storage dtype (f32, f16, bf16, Q8_0, Q4_0):
// every cpu instruction-set path this CPU runs (generic, avx2, avx512, avx512_bf16, amx) and every
// backend under test, against reference/ on random inputs, in both weight layouts, with and
// without bias, for 1, 3, 6, 8, 16, 17, 48, 130 and 300 activation rows (decode tiles, tile
// edges, prefill's chunks of 16 with a partial last one) and odd output counts (a tile of weight
// rows at the edge).
//
// Tolerances (relative error ||got - want|| / ||want||):
//  - exact check: reference/ given x as the path rounds it (cpu::round_activations) must match
//    to f32 summation error: 1e-5;
//  - against the unrounded x: the q8 rounding of x (d = max|x| / 127 per block of 32) leaves an
//    error uniform in +-d/2, about 0.5% of a normal x's scale, and the products keep that
//    relative size: 1.5e-2 for Q8_0/Q4_0 where the path rounds x (the vector paths at N <= 16,
//    and AVX-512's and AMX's row tiles from 8 rows on); bf16 rounding of x (2^-9 relative) gives about 2e-3:
//    6e-3 for bf16 on avx512_bf16 at N <= 16; 1e-5 where x is not rounded (widened panels of the
//    weights above 16 rows take x as it is).
#include <gtest/gtest.h>

#include <string>

#include "backend/cpu/matmul_weights.h"
#include "conformance.h"

namespace tandem::testing {
namespace {

using backend::cpu::WeightsIsa;

constexpr DType kWeightDtypes[] = {DType::F32, DType::F16, DType::BF16, DType::Q8_0, DType::Q4_0};
// 6 rows: the first of AMX's row tiles, still decoding's tiles elsewhere. 8 to 300 rows:
// AVX-512's row tiles, chunks of 16 with a partial last one, odd numbers of chunks.
constexpr int64_t kRowCounts[] = {1, 3, 6, 8, 16, 17, 48, 130, 300};

// The tolerance against unrounded x, from whether and how the path rounded x.
double unrounded_tolerance(DType w, bool x_rounded) {
    if (!x_rounded) return 1e-5;
    return w == DType::Q8_0 || w == DType::Q4_0 ? 1.5e-2 : 6e-3;
}

struct Case {
    int64_t N, O, K;
    bool in_out, has_bias;
    std::string str(DType w) const {
        return std::string(dtype_name(w)) + " N=" + std::to_string(N) + " O=" + std::to_string(O) +
               " K=" + std::to_string(K) + (in_out ? " [K, O]" : " [O, K]") +
               (has_bias ? " bias" : "");
    }
};

// The cases for one weight dtype: [O, K] with odd O and K of an odd and an even number of
// blocks (AVX-512 takes blocks in pairs) and one of more than 64, K off the vector width for
// element dtypes; [K, O]
// with O of whole blocks and odd K.
std::vector<Case> cases_for(DType w) {
    std::vector<Case> out;
    std::vector<int64_t> ks = {96, 320};
    if (!is_block_dtype(w)) ks.push_back(71);
    else ks.push_back(32 * 67);  // the one-row tiles gather scales 64 blocks at a time
    for (int64_t N : kRowCounts) {
        for (int64_t K : ks) out.push_back({N, 37, K, false, N % 2 == 1});
        out.push_back({N, 64, 37, true, N % 2 == 0});
    }
    return out;
}

// Reference product of the weights held by `w` (as reference tensors) on host x.
std::vector<float> reference_product(const Case& c, const std::vector<float>& x,
                                     const DeviceTensor& w, const DeviceTensor& bias) {
    auto& ref = reference_backend();
    DeviceTensor xr = DeviceTensor::from(ref, x, {c.N, c.K});
    DeviceTensor out = DeviceTensor::from(ref, random_normal(c.N * c.O, 5), {c.N, c.O});
    ref.matmul_weights(out, xr, w, bias, c.in_out);
    return out.to_host();
}

class MatmulWeightsOnEachIsa : public ::testing::TestWithParam<WeightsIsa> {
   protected:
    void SetUp() override {
        if (!backend::cpu::weights_isa_runs(GetParam()))
            GTEST_SKIP() << "this CPU cannot run the " << weights_isa_name(GetParam()) << " path";
    }
};

TEST_P(MatmulWeightsOnEachIsa, MatchesReferenceForEveryWeightDtype) {
    const WeightsIsa isa = GetParam();
    auto& cpu = backend::get_backend("cpu");
    auto& ref = reference_backend();
    for (DType wd : kWeightDtypes)
        for (const Case& c : cases_for(wd)) {
            const Shape w_shape = c.in_out ? Shape{c.K, c.O} : Shape{c.O, c.K};
            const std::vector<float> wv = random_normal(c.O * c.K, 11, 0.1f);
            const std::vector<float> x = random_normal(c.N * c.K, 12);
            const std::vector<float> b = random_normal(c.O, 13);
            DeviceTensor w = DeviceTensor::from(cpu, wv, w_shape, wd);
            DeviceTensor w_ref = DeviceTensor::from(ref, wv, w_shape, wd);
            DeviceTensor bias, bias_ref;
            if (c.has_bias) {
                bias = DeviceTensor::from(cpu, b, {c.O});
                bias_ref = DeviceTensor::from(ref, b, {c.O});
            }
            DeviceTensor xt = DeviceTensor::from(cpu, x, {c.N, c.K});
            // Random contents: a kernel that skips an output element is caught.
            DeviceTensor out = DeviceTensor::from(cpu, random_normal(c.N * c.O, 14), {c.N, c.O});
            backend::cpu::matmul_weights(isa, out, xt, w, bias, c.in_out);
            const std::vector<float> got = out.to_host();

            // The path's own rounding of x: [K, O] products never round x.
            std::vector<float> rounded = x;
            if (!c.in_out)
                for (int64_t n = 0; n < c.N; ++n)
                    backend::cpu::round_activations(isa, wd, c.N, rounded.data() + n * c.K, c.K);
            const std::string what = std::string(weights_isa_name(isa)) + " " + c.str(wd);
            const double exact_err = relative_error(got, reference_product(c, rounded, w_ref, bias_ref));
            EXPECT_LE(exact_err, 1e-5) << what << " against reference/ on x as the path rounds it";
            const double err = relative_error(got, reference_product(c, x, w_ref, bias_ref));
            EXPECT_LE(err, unrounded_tolerance(wd, rounded != x)) << what << " against reference/";
        }
}

INSTANTIATE_TEST_SUITE_P(Paths, MatmulWeightsOnEachIsa,
                         ::testing::Values(WeightsIsa::generic, WeightsIsa::avx2,
                                           WeightsIsa::avx512, WeightsIsa::avx512_bf16,
                                           WeightsIsa::amx),
                         [](const auto& info) {
                             return std::string(weights_isa_name(info.param));
                         });

// Batch-1 decoding has its own Q8_0 and Q4_0 tiles on AVX-512: a row's product must be the same,
// bit for bit, as when it runs beside other rows in the decode tiles (2-7 rows), so that a
// sequence's tokens do not depend on how many others shared its step there.
TEST_P(MatmulWeightsOnEachIsa, OneRowGivesTheBitsOfThatRowInABatch) {
    const WeightsIsa isa = GetParam();
    auto& cpu = backend::get_backend("cpu");
    for (DType wd : {DType::Q8_0, DType::Q4_0})
        for (int64_t K : {96, 320, 32 * 67}) {
            const int64_t O = 37, N = 3;
            DeviceTensor w = DeviceTensor::from(cpu, random_normal(O * K, 21, 0.1f), {O, K}, wd);
            const std::vector<float> x = random_normal(N * K, 22);
            DeviceTensor xs = DeviceTensor::from(cpu, x, {N, K});
            DeviceTensor batch = DeviceTensor::from(cpu, std::vector<float>(N * O), {N, O});
            backend::cpu::matmul_weights(isa, batch, xs, w, Tensor(), false);
            const std::vector<float> together = batch.to_host();
            for (int64_t n = 0; n < N; ++n) {
                DeviceTensor x1 = DeviceTensor::from(
                    cpu, std::vector<float>(x.begin() + n * K, x.begin() + (n + 1) * K), {1, K});
                DeviceTensor one = DeviceTensor::from(cpu, std::vector<float>(O), {1, O});
                backend::cpu::matmul_weights(isa, one, x1, w, Tensor(), false);
                const std::vector<float> alone = one.to_host();
                for (int64_t o = 0; o < O; ++o)
                    ASSERT_EQ(alone[o], together[n * O + o])
                        << weights_isa_name(isa) << " " << dtype_name(wd) << " K=" << K
                        << " row " << n << " output " << o;
            }
        }
}

// Through the Backend interface, on every backend under test with its own choice of path.
TEST(MatmulWeights, EveryBackendMatchesReference) {
    for (const Target& target : conformance_targets()) {
        if (target.dtype != DType::F32) continue;
        backend::Backend& be = *target.backend;
        for (DType wd : kWeightDtypes)
            for (const Case& c : {Case{3, 37, 96, false, true}, Case{130, 64, 37, true, false}}) {
                const Shape w_shape = c.in_out ? Shape{c.K, c.O} : Shape{c.O, c.K};
                const std::vector<float> wv = random_normal(c.O * c.K, 21, 0.1f);
                const std::vector<float> x = random_normal(c.N * c.K, 22);
                const std::vector<float> b = random_normal(c.O, 23);
                if (be.device() != Device::Host && wd != DType::F32) continue;  // cpu only
                DeviceTensor w = DeviceTensor::from(be, wv, w_shape, wd);
                DeviceTensor w_ref = DeviceTensor::from(reference_backend(), wv, w_shape, wd);
                DeviceTensor bias, bias_ref;
                if (c.has_bias) {
                    bias = DeviceTensor::from(be, b, {c.O});
                    bias_ref = DeviceTensor::from(reference_backend(), b, {c.O});
                }
                DeviceTensor xt = DeviceTensor::from(be, x, {c.N, c.K});
                DeviceTensor out = DeviceTensor::from(be, random_normal(c.N * c.O, 24), {c.N, c.O});
                be.matmul_weights(out, xt, w, bias, c.in_out);
                EXPECT_LE(relative_error(out.to_host(), reference_product(c, x, w_ref, bias_ref)),
                          1.5e-2)
                    << target.label() << " " << c.str(wd);
            }
    }
}

// reference/ itself, on numbers worked by hand: W [2, 32] Q8_0 with every weight 127/128 in
// row 0 and 127/64 in row 1 (exact: q = 127, d = 2^-7 and 2^-6), x = 0.5, bias (1, -1).
TEST(MatmulWeights, ReferenceSumsDequantisedRows) {
    auto& ref = reference_backend();
    std::vector<float> wv(64, 127.0f / 128);
    std::fill(wv.begin() + 32, wv.end(), 127.0f / 64);
    DeviceTensor w = DeviceTensor::from(ref, wv, {2, 32}, DType::Q8_0);
    DeviceTensor x = DeviceTensor::from(ref, std::vector<float>(32, 0.5f), {1, 32});
    DeviceTensor bias = DeviceTensor::from(ref, {1.0f, -1.0f}, {2});
    DeviceTensor out(ref, DType::F32, {1, 2});
    ref.matmul_weights(out, x, w, bias, false);
    EXPECT_EQ(out.to_host(), (std::vector<float>{16 * 127.0f / 128 + 1, 16 * 127.0f / 64 - 1}));
}

TEST(MatmulWeightsDeathTest, WeightRowsOfPartialBlocksStopWithTheShape) {
    for (const std::string& name : backend::available_backends()) {
        backend::Backend& be = backend::get_backend(name);
        if (be.device() != Device::Host) continue;
        // [4, 40] Q8_0: 160 values are 5 whole blocks, but a row of 40 is not.
        DeviceTensor w(be, DType::Q8_0, {4, 40}), x(be, DType::F32, {2, 40}),
            out(be, DType::F32, {2, 4});
        EXPECT_DEATH(be.matmul_weights(out, x, w, Tensor(), false), "whole blocks.*q8_0\\[4, 40\\]")
            << name;
    }
}

TEST(WeightsIsa, ChoiceRejectsUnknownAndUnsupportedPaths) {
    using backend::cpu::weights_isa_choice;
    EXPECT_EQ(weights_isa_choice(nullptr, WeightsIsa::avx2), WeightsIsa::avx2);
    EXPECT_EQ(weights_isa_choice("auto", WeightsIsa::avx512), WeightsIsa::avx512);
    EXPECT_EQ(weights_isa_choice("avx2", WeightsIsa::avx512_bf16), WeightsIsa::avx2);
    EXPECT_EQ(weights_isa_choice(nullptr, WeightsIsa::amx), WeightsIsa::amx);
    EXPECT_EQ(weights_isa_choice("amx", WeightsIsa::amx), WeightsIsa::amx);
    try {
        weights_isa_choice("avx512", WeightsIsa::avx2);
        FAIL() << "no error";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("TANDEM_CPU_ISA=avx512"), std::string::npos) << e.what();
        EXPECT_NE(std::string(e.what()).find("at most avx2"), std::string::npos) << e.what();
    }
    try {
        weights_isa_choice("sse9", WeightsIsa::avx2);
        FAIL() << "no error";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("sse9"), std::string::npos) << e.what();
        EXPECT_NE(std::string(e.what()).find("avx512_bf16 or amx"), std::string::npos) << e.what();
    }
}

}  // namespace
}  // namespace tandem::testing

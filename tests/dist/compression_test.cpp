// Gradient codecs on one process: error feedback makes the transmitted sum track the true sum
// where plain rounding drifts, PowerSGD is exact on a matrix of rank at most R (to bf16's
// precision with bf16 factors), its residual the same whenever it is settled and its output
// the same whether written whole or formed in pieces from the factors, payload sizes
// are what the formats say, and bad options and shapes are Errors naming the culprit.
#include "dist/compression.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <utility>
#include <vector>

#include "common/error_message.h"
#include "core/dtype.h"
#include "core/rng.h"

namespace tandem::dist {
namespace {

using tandem::testing::error_message;

TEST(Compression, ParsesEveryFormAndNamesTheBadValue) {
    EXPECT_EQ(parse_compression("none").kind, CompressionKind::None);
    EXPECT_EQ(parse_compression("bf16").kind, CompressionKind::Bf16);
    EXPECT_EQ(parse_compression("int8").kind, CompressionKind::Int8);
    const CompressionSpec p = parse_compression("powersgd:4");
    EXPECT_EQ(p.kind, CompressionKind::PowerSgd);
    EXPECT_EQ(p.rank, 4);
    EXPECT_EQ(p.str(), "powersgd:4");
    EXPECT_FALSE(p.bf16_factors);
    const CompressionSpec h = parse_compression("powersgd:2:bf16");
    EXPECT_EQ(h.rank, 2);
    EXPECT_TRUE(h.bf16_factors);
    EXPECT_EQ(h.str(), "powersgd:2:bf16");
    EXPECT_NE(error_message([] { parse_compression("powersgd:x:bf16"); }).find("the rank 'x'"),
              std::string::npos);
    EXPECT_NE(error_message([] { parse_compression("powersgd:2:f16"); }).find("the rank '2:f16'"),
              std::string::npos);
    EXPECT_NE(error_message([] { parse_compression("fp8"); }).find("compress='fp8' is not a compression; use none, bf16"),
              std::string::npos);
    EXPECT_NE(error_message([] { parse_compression("powersgd"); }).find("powersgd needs a rank"), std::string::npos);
    EXPECT_NE(error_message([] { parse_compression("powersgd:0"); }).find("the rank '0'"), std::string::npos);
    EXPECT_NE(error_message([] { parse_compression("powersgd:2x"); }).find("the rank '2x'"), std::string::npos);
}

// Sums over many steps: what was transmitted against what was meant.
struct Sums {
    std::vector<double> sent, truth;
};

Sums run_steps(GradientCompressor& codec, const std::vector<float>& gradient, int steps, bool vary) {
    LocalCommunicator comm;
    const int64_t n = static_cast<int64_t>(gradient.size());
    Sums sums{std::vector<double>(n), std::vector<double>(n)};
    std::vector<float> g(n);
    for (int s = 0; s < steps; ++s) {
        for (int64_t i = 0; i < n; ++i) {
            g[i] = vary ? gradient[i] * (1.0f + 0.5f * random_normal(RngKey{3, RngPurpose::Init, 0, uint32_t(s)}, i))
                        : gradient[i];
            sums.truth[i] += g[i];
        }
        codec.all_reduce(comm, Tensor(g.data(), DType::F32, {n}));
        for (int64_t i = 0; i < n; ++i) sums.sent[i] += g[i];
    }
    return sums;
}

TEST(Compression, Int8ErrorFeedbackSendsWhatRoundingWouldLose) {
    // 0.001 is under half of the chunk's step (1/127): alone it would always round to zero.
    std::vector<float> gradient(300, 0.0f);
    gradient[0] = 1.0f;
    gradient[1] = 0.001f;
    gradient[2] = -0.3337f;
    gradient[299] = 0.0004f;  // the second chunk (256 + 44 values) has its own scale
    const CompressionSpec spec = parse_compression("int8");
    GradientCompressor codec(spec, 300, {}, 1);
    const Sums with = run_steps(codec, gradient, 1000, false);
    for (int64_t i = 0; i < 300; ++i) EXPECT_NEAR(with.sent[i], with.truth[i], 1.0 / 127) << i;
    EXPECT_NEAR(with.sent[1], 1.0, 1.0 / 127);
    // Without feedback (a fresh codec each step) the small value never arrives.
    double without = 0;
    for (int s = 0; s < 1000; ++s) {
        GradientCompressor fresh(spec, 300, {}, 1);
        without += run_steps(fresh, gradient, 1, false).sent[1];
    }
    EXPECT_EQ(without, 0.0);
}

TEST(Compression, ErrorFeedbackTracksVaryingGradients) {
    std::vector<float> gradient(1000);
    fill_normal(gradient.data(), 1000, RngKey{11, RngPurpose::Init, 0, 0});
    for (const char* name : {"bf16", "int8"}) {
        GradientCompressor codec(parse_compression(name), 1000, {}, 1);
        const Sums sums = run_steps(codec, gradient, 200, true);
        double worst = 0, total = 0;
        for (int64_t i = 0; i < 1000; ++i) {
            worst = std::max(worst, std::fabs(sums.sent[i] - sums.truth[i]));
            total = std::max(total, std::fabs(sums.truth[i]));
        }
        // The gap is one residual, about one rounding step, however long the run.
        EXPECT_LT(worst, std::string(name) == "bf16" ? 0.02 : 0.03) << name;
        EXPECT_GT(total, 20.0) << name;
        EXPECT_EQ(codec.state().size(), 1u);
    }
}

TEST(Compression, Bf16ErrorFeedbackSendsTheBitsBeyondEightOfMantissa) {
    const std::vector<float> gradient = {1.0f + 1.0f / 1024, -3.0f - 3.0f / 4096};  // both round away in bf16
    GradientCompressor codec(parse_compression("bf16"), 2, {}, 1);
    const Sums sums = run_steps(codec, gradient, 512, false);
    EXPECT_NEAR(sums.sent[0], sums.truth[0], 1.0 / 128);
    EXPECT_NEAR(sums.sent[1], sums.truth[1], 4.0 / 128);
    EXPECT_NE(sums.sent[0], 512.0);  // plain rounding would send exactly 1.0 each step
}

// A rank-2 matrix [16, 12] plus a vector of 5 that travels uncompressed.
std::vector<float> low_rank_gradient(uint64_t seed) {
    std::vector<float> u(32), v(24), g(16 * 12 + 5);
    fill_normal(u.data(), 32, RngKey{seed, RngPurpose::Init, 0, 1});
    fill_normal(v.data(), 24, RngKey{seed, RngPurpose::Init, 0, 2});
    for (int64_t i = 0; i < 16; ++i)
        for (int64_t j = 0; j < 12; ++j) g[i * 12 + j] = u[i] * v[j] + u[16 + i] * v[12 + j];
    for (int64_t i = 0; i < 5; ++i) g[192 + i] = 0.1f * (i + 1);
    return g;
}

// `want` through `codec` once (one rank): the output, and its largest error over the matrix
// (the first 192 values) relative to the matrix's largest value.
std::pair<std::vector<float>, double> one_pass(GradientCompressor& codec,
                                               const std::vector<float>& want) {
    LocalCommunicator comm;
    std::vector<float> g = want;
    codec.all_reduce(comm, Tensor(g.data(), DType::F32, {int64_t(g.size())}));
    double err = 0, norm = 0;
    for (int64_t i = 0; i < 192; ++i) {
        err = std::max(err, std::fabs(double(g[i]) - want[i]));
        norm = std::max(norm, std::fabs(double(want[i])));
    }
    return {g, err / norm};
}

TEST(Compression, PowerSgdIsExactOnAMatrixOfRankR) {
    const std::vector<float> want = low_rank_gradient(5);
    GradientCompressor codec(parse_compression("powersgd:2"), 197, {{0, 16, 12}, {192, 1, 5}}, 9);
    const auto [g, err] = one_pass(codec, want);
    EXPECT_LT(err, 1e-5);
    for (int64_t i = 192; i < 197; ++i) EXPECT_EQ(g[i], want[i]);  // the vector went as it was
    // P [16, 2] and Q [12, 2] of the matrix, and the 5 values of the vector, as f32.
    EXPECT_EQ(codec.payload_bytes_last(), (32u + 24u + 5u) * 4);
    // The output's sum of squares, summed on the way (the step's gradient norm).
    double squares = 0;
    for (float v : g) squares += double(v) * v;
    ASSERT_TRUE(codec.sum_squares_last().has_value());
    EXPECT_NEAR(*codec.sum_squares_last(), squares, 1e-12 * squares);
    EXPECT_EQ(codec.dense_bytes(), 197u * 4);
}

// With bf16 factors the same matrix comes back to bf16's precision, for half the bytes; the
// vector travels as bf16 too, and keeps what rounding left out for the next call.
TEST(Compression, PowerSgdWithBf16FactorsHalvesTheBytes) {
    const std::vector<float> want = low_rank_gradient(5);
    GradientCompressor codec(parse_compression("powersgd:2:bf16"), 197, {{0, 16, 12}, {192, 1, 5}},
                             9);
    const auto [g, err] = one_pass(codec, want);
    EXPECT_LT(err, 2e-2);
    EXPECT_GT(err, 1e-6);  // the rounding shows: the factors did travel as bf16
    for (int64_t i = 192; i < 197; ++i) EXPECT_EQ(g[i], f32_from_bf16(bf16_from_f32(want[i])));
    for (const auto& [key, t] : codec.state())
        if (key == "residual")
            for (int64_t i = 192; i < 197; ++i) EXPECT_EQ(t.as<float>()[i], want[i] - g[i]);
    EXPECT_EQ(codec.payload_bytes_last(), (32u + 24u + 5u) * 2);
}

// PowerSGD takes each call's estimate out of the residual during the next call; a checkpoint
// in between (state()) takes it out at once. Both give the same bits, call after call.
TEST(Compression, PowerSgdResidualIsTheSameWhetherSettledAtOnceOrAtTheNextCall) {
    for (const char* name : {"powersgd:2", "powersgd:1:bf16"}) {
        const int64_t n = 8 * 10 + 6 * 7 + 3;
        const std::vector<GradientBlock> blocks = {{0, 8, 10}, {83, 6, 7}};
        GradientCompressor settled(parse_compression(name), n, blocks, 5),
            later(parse_compression(name), n, blocks, 5);
        LocalCommunicator comm;
        for (int step = 0; step < 6; ++step) {
            std::vector<float> a(n);
            fill_normal(a.data(), n, RngKey{31, RngPurpose::Init, 0, uint32_t(step)});
            std::vector<float> b = a;
            settled.all_reduce(comm, Tensor(a.data(), DType::F32, {n}));
            (void)settled.state();
            later.all_reduce(comm, Tensor(b.data(), DType::F32, {n}));
            ASSERT_EQ(0, std::memcmp(a.data(), b.data(), n * sizeof(float)))
                << name << " step " << step;
        }
        const auto s = settled.state(), l = later.state();
        ASSERT_EQ(s.size(), l.size());
        for (size_t i = 0; i < s.size(); ++i)
            EXPECT_EQ(0, std::memcmp(s[i].second.data, l[i].second.data, s[i].second.bytes()))
                << name << " " << s[i].first;
    }
}

// Left as factors, PowerSGD's output comes out of fill_output() in pieces of any size, with the
// bits of the output written whole, and the sum of its squares computed from the factors.
TEST(Compression, PowerSgdOutputLeftAsFactorsGivesTheSameBitsPieceByPiece) {
    const int64_t n = 5 + 8 * 10 + 3 + 6 * 7 + 4;
    const std::vector<GradientBlock> blocks = {{5, 8, 10}, {88, 6, 7}};
    GradientCompressor whole(parse_compression("powersgd:2"), n, blocks, 5),
        pieces(parse_compression("powersgd:2"), n, blocks, 5);
    LocalCommunicator comm;
    for (int step = 0; step < 4; ++step) {
        std::vector<float> a(n);
        fill_normal(a.data(), n, RngKey{41, RngPurpose::Init, 0, uint32_t(step)});
        std::vector<float> b = a;
        whole.all_reduce(comm, Tensor(a.data(), DType::F32, {n}));
        pieces.all_reduce(comm, Tensor(b.data(), DType::F32, {n}), /*may_defer_output=*/true);
        EXPECT_FALSE(whole.output_is_deferred());
        ASSERT_TRUE(pieces.output_is_deferred());
        std::vector<float> got(n);
        for (int64_t at = 0; at < n; at += 13)
            pieces.fill_output(b.data(), at, std::min<int64_t>(13, n - at), got.data() + at);
        ASSERT_EQ(0, std::memcmp(got.data(), a.data(), n * sizeof(float))) << "step " << step;
        EXPECT_NEAR(*pieces.sum_squares_last(), *whole.sum_squares_last(),
                    1e-6 * *whole.sum_squares_last());
        pieces.fill_output(b.data(), 0, n, b.data());  // in place, as a whole
        ASSERT_EQ(0, std::memcmp(b.data(), a.data(), n * sizeof(float))) << "step " << step;
    }
}

TEST(Compression, PowerSgdRankOneConvergesOnAFullRankGradientWithErrorFeedback) {
    std::vector<float> gradient(8 * 10);
    fill_normal(gradient.data(), 80, RngKey{21, RngPurpose::Init, 0, 0});
    GradientCompressor codec(parse_compression("powersgd:1"), 80, {{0, 8, 10}}, 3);
    const int steps = 400;
    const Sums sums = run_steps(codec, gradient, steps, false);
    double gap = 0, total = 0;
    for (int64_t i = 0; i < 80; ++i) {
        gap += (sums.sent[i] - sums.truth[i]) * (sums.sent[i] - sums.truth[i]);
        total += sums.truth[i] * sums.truth[i];
    }
    EXPECT_LT(std::sqrt(gap / total), 0.02);  // one rank per step, yet the sum is nearly whole
    // Without feedback the sum is only the best rank-1 part, far from the whole.
    GradientCompressor plain(parse_compression("powersgd:1"), 80, {{0, 8, 10}}, 3);
    LocalCommunicator comm;
    std::vector<float> g = gradient;
    plain.all_reduce(comm, Tensor(g.data(), DType::F32, {80}));
    double miss = 0, norm = 0;
    for (int64_t i = 0; i < 80; ++i) {
        miss += (g[i] - gradient[i]) * (g[i] - gradient[i]);
        norm += gradient[i] * gradient[i];
    }
    EXPECT_GT(std::sqrt(miss / norm), 0.3);
}

TEST(Compression, PayloadBytesFollowTheFormats) {
    LocalCommunicator comm;
    std::vector<float> g(1000, 0.5f);
    const Tensor t(g.data(), DType::F32, {1000});
    GradientCompressor none(parse_compression("none"), 1000, {}, 1), bf16(parse_compression("bf16"), 1000, {}, 1),
        int8(parse_compression("int8"), 1000, {}, 1);
    none.all_reduce(comm, t);
    bf16.all_reduce(comm, t);
    int8.all_reduce(comm, t);
    int8.all_reduce(comm, t);
    EXPECT_EQ(none.payload_bytes_last(), 4000u);
    EXPECT_FALSE(bf16.sum_squares_last().has_value());  // only PowerSGD sums them on the way
    EXPECT_EQ(bf16.payload_bytes_last(), 2000u);
    EXPECT_EQ(int8.payload_bytes_last(), 1000u + 4 * 4);  // 4 chunks of 256 values, one f32 scale each
    EXPECT_EQ(int8.payload_bytes_total(), 2 * 1016u);
    // A matrix too small to gain from rank 4 (the factors would be larger) is sent whole.
    GradientCompressor tiny(parse_compression("powersgd:4"), 1000, {{0, 8, 8}, {64, 30, 31}}, 1);
    tiny.all_reduce(comm, t);
    EXPECT_EQ(tiny.payload_bytes_last(), (64u + 4 * 30 + 4 * 31 + (1000 - 64 - 930)) * 4);
}

TEST(Compression, ANonFiniteGradientReachesTheOutputAndDoesNotStayInTheResidual) {
    for (const char* name : {"bf16", "int8", "powersgd:1"}) {
        LocalCommunicator comm;
        GradientCompressor codec(parse_compression(name), 64, {{0, 8, 8}}, 1);
        std::vector<float> g(64, 0.3f);
        g[5] = NAN;
        codec.all_reduce(comm, Tensor(g.data(), DType::F32, {64}));
        EXPECT_TRUE(std::isnan(g[5])) << name;
        for (const auto& [key, t] : codec.state()) {
            if (key != "residual") continue;
            for (int64_t i = 0; i < 64; ++i) ASSERT_EQ(t.as<float>()[i], 0.0f) << name << " " << i;
        }
        std::fill(g.begin(), g.end(), 0.3f);
        codec.all_reduce(comm, Tensor(g.data(), DType::F32, {64}));
        for (float v : g) ASSERT_TRUE(std::isfinite(v)) << name;
    }
}

TEST(Compression, RejectsAGradientOfAnotherSizeAndOverlappingBlocks) {
    LocalCommunicator comm;
    GradientCompressor codec(parse_compression("int8"), 10, {}, 1);
    std::vector<float> g(12);
    EXPECT_NE(error_message([&] { codec.all_reduce(comm, Tensor(g.data(), DType::F32, {12})); })
                  .find("the gradient is f32[12] on cpu but the compressor was made for f32[10]"),
              std::string::npos);
    EXPECT_NE(error_message([] { GradientCompressor(parse_compression("powersgd:1"), 100, {{0, 5, 5}, {20, 5, 5}}, 1); })
                  .find("block [5, 5] at offset 20 overlaps another"),
              std::string::npos);
    EXPECT_NE(error_message([] { GradientCompressor(parse_compression("powersgd:1"), 100, {{90, 5, 5}}, 1); })
                  .find("runs past the gradient's 100 elements"),
              std::string::npos);
}

}  // namespace
}  // namespace tandem::dist

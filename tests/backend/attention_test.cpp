// Rotary embeddings and causal grouped-query attention: every backend against reference/ (at
// lengths that cross the cpu backend's query blocks), and reference/ against hand-computed
// cases and finite differences.
#include <gtest/gtest.h>

#include <cmath>
#include <numbers>

#include "conformance.h"
#include "gradcheck.h"

namespace tandem::testing {
namespace {

struct Heads {
    int64_t B, T, H, Hkv, D;
    int64_t width() const { return (H + 2 * Hkv) * D; }
    std::string str() const {
        return "B=" + std::to_string(B) + " T=" + std::to_string(T) + " H=" + std::to_string(H) +
               " Hkv=" + std::to_string(Hkv) + " D=" + std::to_string(D);
    }
};

// Forward and backward of attention on one target, compared with reference/.
void check_attention(const Target& target, Heads h) {
    const std::string what = target.label() + " " + h.str();
    const int64_t W = h.width();
    Pair qkv = values(target, random_normal(h.B * h.T * W, 1 + h.T, 1.5f), {h.B, h.T, W});
    Pair out = overwritten(target, {h.B, h.T, h.H * h.D}, target.dtype);
    Pair lse = overwritten(target, {h.B, h.H, h.T}, backend::stats_dtype(target.dtype));
    run_both(target, [&](backend::Backend& be, Side s) {
        be.attention_forward(s(out), s(lse), s(qkv), h.H, h.Hkv);
    });
    expect_close(out, kDefaultTolerance.of(target.dtype), what + " out");
    expect_close(lse, kDefaultTolerance.of(target.dtype), what + " lse");

    Pair dout = values(target, random_normal(h.B * h.T * h.H * h.D, 2), {h.B, h.T, h.H * h.D});
    Pair dqkv = values(target, random_normal(h.B * h.T * W, 3), {h.B, h.T, W});  // overwritten
    run_both(target, [&](backend::Backend& be, Side s) {
        be.attention_backward(s(dqkv), s(dout), s(qkv), s(out), s(lse), h.H, h.Hkv);
    });
    expect_close(dqkv, kAttentionBackwardTolerance.of(target.dtype), what + " dqkv");
}

TEST(Attention, MatchesReferenceWithGroupedQueryHeads) {
    for (const Target& target : conformance_targets())
        for (int64_t T : {1, 7, 33})
            for (int64_t D : {8, 16, 64}) check_attention(target, {2, T, 6, 2, D});
}

TEST(Attention, MatchesReferenceWithOneKeyValueHeadPerQueryHead) {
    for (const Target& target : conformance_targets())
        for (int64_t T : {1, 7, 33})
            for (int64_t D : {8, 16, 64}) check_attention(target, {2, T, 3, 3, D});
}

TEST(Attention, MatchesReferenceWithManyGroupedKeyValueHeads) {
    // Enough (batch, kv head) pairs that the cpu backend gives each its own task.
    for (const Target& target : conformance_targets())
        for (int64_t T : {7, 70}) check_attention(target, {2, T, 32, 16, 8});
}

TEST(Attention, MatchesReferenceAcrossSeveralQueryBlocks) {
    for (const Target& target : conformance_targets()) {
        check_attention(target, {1, 130, 4, 2, 16});
        check_attention(target, {2, 67, 2, 1, 32});
        check_attention(target, {1, 65, 2, 2, 128});  // the head width of Llama and Qwen
        check_attention(target, {1, 1100, 2, 1, 8});  // long: the cpu's 128-row blocks
    }
}

TEST(Attention, MatchesReferenceWithScoresFarBeyondExpRange) {
    // Scores q.k / sqrt(D) in the thousands: the softmax only stays finite with its max
    // subtracted. Only the forward is compared: with near one-hot probabilities the exact dq
    // and dk are tiny differences (dP - delta) of numbers in the thousands, which f32 cannot
    // resolve on any backend; backward must still stay finite.
    const Heads h{1, 33, 2, 1, 16};
    const int64_t W = h.width();
    for (const Target& target : conformance_targets()) {
        Pair qkv = values(target, random_normal(h.B * h.T * W, 7, 50.0f), {h.B, h.T, W});
        Pair out = overwritten(target, {h.B, h.T, h.H * h.D}, target.dtype);
        Pair lse = overwritten(target, {h.B, h.H, h.T}, backend::stats_dtype(target.dtype));
        Pair dout = values(target, random_normal(h.B * h.T * h.H * h.D, 8), {h.B, h.T, h.H * h.D});
        Pair dqkv = overwritten(target, {h.B, h.T, W}, target.dtype);
        run_both(target, [&](backend::Backend& be, Side s) {
            be.attention_forward(s(out), s(lse), s(qkv), h.H, h.Hkv);
            be.attention_backward(s(dqkv), s(dout), s(qkv), s(out), s(lse), h.H, h.Hkv);
        });
        expect_close(out, kDefaultTolerance.of(target.dtype), target.label() + " out");
        expect_close(lse, kDefaultTolerance.of(target.dtype), target.label() + " lse");
        for (float g : dqkv.got.to_host()) ASSERT_TRUE(std::isfinite(g)) << target.label();
    }
}

// Llama 3.1's rescaling (factors 8, 1, 4) over a short original context of 64 positions, so
// that heads of 8 to 64 dims have frequencies in all three bands (unchanged, blended, slowed).
const backend::RopeParams kLlama3Rope{
    500000.0f, {.factor = 8.0f, .low_freq_factor = 1.0f, .high_freq_factor = 4.0f,
                .original_max_positions = 64}};

TEST(Rope, MatchesReferenceForwardAndBackward) {
    const backend::RopeParams plain{10000.0f}, plain_qwen{1e6f};
    for (const Target& target : conformance_targets())
        for (Heads h : {Heads{2, 7, 6, 2, 16}, Heads{1, 33, 3, 3, 8}, Heads{1, 5, 2, 1, 64}})
            for (int64_t pos_offset : {0, 1000})
                for (bool scaled : {false, true}) {
                    const std::string what = target.label() + " " + h.str() +
                                             " pos_offset=" + std::to_string(pos_offset) +
                                             (scaled ? " llama3" : "");
                    const int64_t W = h.width();
                    Pair qkv = values(target, random_normal(h.B * h.T * W, 4), {h.B, h.T, W});
                    run_both(target, [&](backend::Backend& be, Side s) {
                        be.rope_forward(s(qkv), h.H, h.Hkv, scaled ? kLlama3Rope : plain,
                                        pos_offset);
                    });
                    expect_close(qkv, kDefaultTolerance.of(target.dtype), what + " forward");
                    run_both(target, [&](backend::Backend& be, Side s) {
                        be.rope_backward(s(qkv), h.H, h.Hkv, scaled ? kLlama3Rope : plain_qwen,
                                         pos_offset);
                    });
                    expect_close(qkv, kDefaultTolerance.of(target.dtype), what + " backward");
                }
}

// The Llama 3 inverse frequencies of D = 8, theta = 10^4 (plain: 1, 0.1, 0.01, 0.001;
// wavelengths 2 pi / f = 6.3, 63, 628, 6283) with factor 4, low 1, high 8 over 256 positions:
// the band edges are 256 / 8 = 32 and 256 / 1 = 256, so pair 0 stays, pair 1 is blended with
// s = (256 / 62.83 - 1) / 7, pairs 2 and 3 are divided by 4.
const backend::RopeParams kBandsRope{
    10000.0f, {.factor = 4.0f, .low_freq_factor = 1.0f, .high_freq_factor = 8.0f,
               .original_max_positions = 256}};
std::vector<double> band_inv_freqs() {
    const double s = (256.0 / (2.0 * std::numbers::pi / 0.1) - 1.0) / 7.0;
    return {1.0, (1.0 - s) * 0.1 / 4.0 + s * 0.1, 0.01 / 4.0, 0.001 / 4.0};
}

TEST(Rope, InverseFrequenciesFollowLlama3sThreeBands) {
    const auto want = band_inv_freqs();
    for (int64_t i = 0; i < 4; ++i) {
        EXPECT_NEAR(kBandsRope.inv_freq(i, 8), want[i], 1e-12 * want[i]) << i;
        EXPECT_NEAR(backend::RopeParams{10000.0f}.inv_freq(i, 8), std::pow(10.0, -i),
                    1e-12 * std::pow(10.0, -i));
    }
}

TEST(Rope, ReferenceRotatesEachPairByItsLlama3Frequency) {
    // One q and one k head of D = 8; x = e_i puts (cos, sin) of pair i's angle in x[i], x[i+4].
    auto& ref = reference_backend();
    const auto f = band_inv_freqs();
    const int64_t pos = 37, W = 3 * 8;
    for (int64_t i = 0; i < 4; ++i) {
        HostF64 qkv({1, 1, W}, 0);
        qkv.data[i] = 1.0;      // q head
        qkv.data[8 + i] = 1.0;  // k head
        ref.rope_forward(qkv, 1, 1, kBandsRope, pos);
        for (int64_t head : {0, 8}) {
            EXPECT_NEAR(qkv.data[head + i], std::cos(pos * f[i]), 1e-12) << i;
            EXPECT_NEAR(qkv.data[head + i + 4], std::sin(pos * f[i]), 1e-12) << i;
        }
    }
}

TEST(Attention, ReferenceReturnsTheValueForASinglePosition) {
    auto& ref = reference_backend();
    const Heads h{1, 1, 2, 1, 4};
    HostF64 qkv({1, 1, h.width()}, 91), out({1, 1, h.H * h.D}, 0), lse({1, h.H, 1}, 0);
    ref.attention_forward(out, lse, qkv, h.H, h.Hkv);
    for (int64_t head = 0; head < h.H; ++head)
        for (int64_t d = 0; d < h.D; ++d)
            EXPECT_EQ(out.data[head * h.D + d], qkv.data[(h.H + h.Hkv) * h.D + d]);
    // One score: lse = q . k / sqrt(D).
    double qk = 0;
    for (int64_t d = 0; d < h.D; ++d) qk += qkv.data[d] * qkv.data[h.H * h.D + d];
    EXPECT_NEAR(lse.data[0], qk / 2.0, 1e-12);
}

TEST(Attention, ReferenceAveragesThePastWhenQueriesAreZero) {
    // q = 0 makes every score 0: position t averages v_0..v_t and lse = log(t + 1).
    auto& ref = reference_backend();
    const Heads h{1, 4, 1, 1, 2};
    HostF64 qkv({1, h.T, h.width()}, 92), out({1, h.T, h.D}, 0), lse({1, 1, h.T}, 0);
    for (int64_t t = 0; t < h.T; ++t)
        for (int64_t d = 0; d < h.D; ++d) qkv.data[t * h.width() + d] = 0.0;
    ref.attention_forward(out, lse, qkv, h.H, h.Hkv);
    for (int64_t t = 0; t < h.T; ++t) {
        EXPECT_NEAR(lse.data[t], std::log(double(t + 1)), 1e-12);
        for (int64_t d = 0; d < h.D; ++d) {
            double mean = 0;
            for (int64_t s = 0; s <= t; ++s) mean += qkv.data[s * h.width() + 2 * h.D + d];
            EXPECT_NEAR(out.data[t * h.D + d], mean / (t + 1), 1e-12);
        }
    }
}

TEST(Attention, ReferenceBackwardMatchesFiniteDifferences) {
    auto& ref = reference_backend();
    for (Heads h : {Heads{1, 5, 4, 2, 4}, Heads{2, 3, 2, 2, 2}}) {
        const int64_t W = h.width();
        HostF64 qkv({h.B, h.T, W}, 93), dout({h.B, h.T, h.H * h.D}, 94);
        HostF64 out({h.B, h.T, h.H * h.D}, 0), lse({h.B, h.H, h.T}, 0), dqkv({h.B, h.T, W}, 0);
        auto loss = [&] {
            ref.attention_forward(out, lse, qkv, h.H, h.Hkv);
            return dot(out.data, dout.data);
        };
        loss();
        ref.attention_backward(dqkv, dout, qkv, out, lse, h.H, h.Hkv);
        EXPECT_LT(gradient_error(qkv.data, dqkv.data, loss), kFiniteDifferenceTolerance) << h.str();
    }
}

TEST(Rope, ReferenceRotatesTheFirstPairByThePosition) {
    // D = 2: one pair, angle = position * theta^0 = position; the v head is left alone.
    auto& ref = reference_backend();
    HostF64 qkv({1, 2, 6}, 0);
    qkv.data = {1, 0, 1, 0, 7, 8,   // t = 0: q, k, v
                1, 0, 0, 1, 7, 8};  // t = 1
    ref.rope_forward(qkv, 1, 1, {10000.0f}, 2);
    const double c2 = std::cos(2.0), s2 = std::sin(2.0), c3 = std::cos(3.0), s3 = std::sin(3.0);
    const std::vector<double> want = {c2, s2, c2, s2, 7, 8, c3, s3, -s3, c3, 7, 8};
    for (size_t i = 0; i < want.size(); ++i) EXPECT_NEAR(qkv.data[i], want[i], 1e-12) << i;
}

TEST(Rope, ReferenceBackwardIsTheTransposeOfForward) {
    // <rope(x), y> = <x, rope_backward(y)> for the linear map rope.
    auto& ref = reference_backend();
    const Heads h{2, 5, 4, 2, 8};
    HostF64 x({h.B, h.T, h.width()}, 95), y({h.B, h.T, h.width()}, 96);
    for (const backend::RopeParams& rope : {backend::RopeParams{500.0f}, kLlama3Rope}) {
        HostF64 rx = x, ry = y;
        ref.rope_forward(rx, h.H, h.Hkv, rope, 3);
        ref.rope_backward(ry, h.H, h.Hkv, rope, 3);
        EXPECT_NEAR(dot(rx.data, y.data), dot(x.data, ry.data), 1e-10);
        ref.rope_forward(ry, h.H, h.Hkv, rope, 3);  // and it undoes the rotation
        for (size_t i = 0; i < y.data.size(); ++i) EXPECT_NEAR(ry.data[i], y.data[i], 1e-12);
    }
}

}  // namespace
}  // namespace tandem::testing

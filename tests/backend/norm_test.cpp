// LayerNorm, RMSNorm and the per-head q/k RMSNorm: every backend against reference/, and
// reference/'s backward against finite differences of its forward.
#include <gtest/gtest.h>

#include <cmath>

#include "conformance.h"
#include "gradcheck.h"

namespace tandem::testing {
namespace {

struct RowsCols {
    int64_t N, C;
};
// Widths of 1, non-multiples of 8/16, and one wide row.
constexpr RowsCols kNormSizes[] = {{1, 1}, {7, 33}, {33, 7}, {3, 4097}, {16, 768}};

TEST(LayerNorm, MatchesReferenceForwardAndBackwardAndAccumulatesGradients) {
    for (const Target& target : conformance_targets())
        for (auto [N, C] : kNormSizes) {
            const std::string what =
                target.label() + " N=" + std::to_string(N) + " C=" + std::to_string(C);
            Pair x = values(target, random_normal(N * C, 1, 2.0f), {N, C});
            Pair w = values(target, random_normal(C, 2), {C});
            Pair b = values(target, random_normal(C, 3), {C});
            Pair y = overwritten(target, {N, C}, target.dtype);
            Pair mean = overwritten(target, {N}, backend::stats_dtype(target.dtype));
            Pair rstd = overwritten(target, {N}, backend::stats_dtype(target.dtype));
            run_both(target, [&](backend::Backend& be, Side s) {
                be.layer_norm_forward(s(y), s(mean), s(rstd), s(x), s(w), s(b), 1e-5f);
            });
            expect_close(y, kDefaultTolerance.of(target.dtype), what + " y");
            expect_close(mean, kDefaultTolerance.of(target.dtype), what + " mean");
            expect_close(rstd, kDefaultTolerance.of(target.dtype), what + " rstd");

            // Every gradient output here accumulates: start from random values.
            Pair dy = values(target, random_normal(N * C, 4), {N, C});
            Pair dx = values(target, random_normal(N * C, 5), {N, C});
            Pair dw = values(target, random_normal(C, 6), {C});
            Pair db = values(target, random_normal(C, 7), {C});
            run_both(target, [&](backend::Backend& be, Side s) {
                be.layer_norm_backward(s(dx), s(dw), s(db), s(dy), s(x), s(w), s(mean), s(rstd));
            });
            expect_close(dx, kDefaultTolerance.of(target.dtype), what + " dx");
            expect_close(dw, kDefaultTolerance.of(target.dtype), what + " dweight");
            expect_close(db, kDefaultTolerance.of(target.dtype), what + " dbias");
        }
}

TEST(RmsNorm, MatchesReferenceForwardAndBackwardAndAccumulatesGradients) {
    for (const Target& target : conformance_targets())
        for (auto [N, C] : kNormSizes) {
            const std::string what =
                target.label() + " N=" + std::to_string(N) + " C=" + std::to_string(C);
            Pair x = values(target, random_normal(N * C, 11, 2.0f), {N, C});
            Pair w = values(target, random_normal(C, 12), {C});
            Pair y = overwritten(target, {N, C}, target.dtype);
            Pair rstd = overwritten(target, {N}, backend::stats_dtype(target.dtype));
            run_both(target, [&](backend::Backend& be, Side s) {
                be.rms_norm_forward(s(y), s(rstd), s(x), s(w), 1e-6f);
            });
            expect_close(y, kDefaultTolerance.of(target.dtype), what + " y");
            expect_close(rstd, kDefaultTolerance.of(target.dtype), what + " rstd");

            Pair dy = values(target, random_normal(N * C, 13), {N, C});
            Pair dx = values(target, random_normal(N * C, 14), {N, C});
            Pair dw = values(target, random_normal(C, 15), {C});
            run_both(target, [&](backend::Backend& be, Side s) {
                be.rms_norm_backward(s(dx), s(dw), s(dy), s(x), s(w), s(rstd));
            });
            expect_close(dx, kDefaultTolerance.of(target.dtype), what + " dx");
            expect_close(dw, kDefaultTolerance.of(target.dtype), what + " dweight");
        }
}

struct Heads {
    int64_t B, T, H, Hkv, D;
};

TEST(QkNorm, MatchesReferenceWithGroupedAndEqualHeads) {
    for (const Target& target : conformance_targets())
        for (auto [B, T, H, Hkv, D] :
             {Heads{2, 7, 6, 2, 16}, Heads{1, 3, 2, 2, 8}, Heads{2, 5, 4, 1, 64}}) {
            const std::string what = target.label() + " H=" + std::to_string(H) +
                                     " Hkv=" + std::to_string(Hkv) + " D=" + std::to_string(D);
            const int64_t W = (H + 2 * Hkv) * D;
            const DType stats_dtype = backend::stats_dtype(target.dtype);
            Pair qkv = values(target, random_normal(B * T * W, 21, 3.0f), {B, T, W});
            Pair wq = values(target, random_normal(D, 22), {D});
            Pair wk = values(target, random_normal(D, 23), {D});
            Pair y = overwritten(target, {B, T, W}, target.dtype);
            Pair rstd = overwritten(target, {B, T, H + Hkv}, stats_dtype);
            run_both(target, [&](backend::Backend& be, Side s) {
                be.qk_norm_forward(s(y), s(rstd), s(qkv), s(wq), s(wk), H, Hkv, 1e-6f);
            });
            expect_close(y, kDefaultTolerance.of(target.dtype), what + " y");
            expect_close(rstd, kDefaultTolerance.of(target.dtype), what + " rstd");

            Pair dy = values(target, random_normal(B * T * W, 24), {B, T, W});
            Pair dqkv = values(target, random_normal(B * T * W, 25), {B, T, W});  // overwritten
            Pair dwq = values(target, random_normal(D, 26), {D});                 // accumulated
            Pair dwk = values(target, random_normal(D, 27), {D});
            run_both(target, [&](backend::Backend& be, Side s) {
                be.qk_norm_backward(s(dqkv), s(dwq), s(dwk), s(dy), s(qkv), s(wq), s(wk), s(rstd),
                                    H, Hkv);
            });
            expect_close(dqkv, kDefaultTolerance.of(target.dtype), what + " dqkv");
            expect_close(dwq, kDefaultTolerance.of(target.dtype), what + " dq_weight");
            expect_close(dwk, kDefaultTolerance.of(target.dtype), what + " dk_weight");
        }
}

TEST(LayerNorm, ReferenceNormalisesAHandComputedRow) {
    // x = [1, 2, 3]: mean 2, biased variance 2/3, so y = (x - 2) / sqrt(2/3) * w + b.
    auto& ref = reference_backend();
    HostF64 x({1, 3}, 0), w({3}, 0), b({3}, 0), y({1, 3}, 0), mean({1}, 0), rstd({1}, 0);
    x.data = {1, 2, 3};
    w.data = {1, 2, 1};
    b.data = {0, 0, 0.5};
    ref.layer_norm_forward(y, mean, rstd, x, w, b, 0.0f);
    const double s = std::sqrt(1.5);
    EXPECT_NEAR(y.data[0], -s, 1e-12);
    EXPECT_NEAR(y.data[1], 0.0, 1e-12);
    EXPECT_NEAR(y.data[2], s + 0.5, 1e-12);
    EXPECT_DOUBLE_EQ(mean.data[0], 2.0);
    EXPECT_NEAR(rstd.data[0], s, 1e-12);
}

TEST(RmsNorm, ReferenceNormalisesAHandComputedRow) {
    // x = [3, 4]: mean(x^2) = 12.5.
    auto& ref = reference_backend();
    HostF64 x({1, 2}, 0), w({2}, 0), y({1, 2}, 0), rstd({1}, 0);
    x.data = {3, 4};
    w.data = {1, -1};
    ref.rms_norm_forward(y, rstd, x, w, 0.0f);
    EXPECT_NEAR(y.data[0], 3 / std::sqrt(12.5), 1e-12);
    EXPECT_NEAR(y.data[1], -4 / std::sqrt(12.5), 1e-12);
}

TEST(LayerNorm, ReferenceBackwardMatchesFiniteDifferences) {
    auto& ref = reference_backend();
    const int64_t N = 3, C = 7;
    HostF64 x({N, C}, 31), w({C}, 32), b({C}, 33), dy({N, C}, 34);
    HostF64 y({N, C}, 0), mean({N}, 0), rstd({N}, 0), dx({N, C}, 0), dw({C}, 0), db({C}, 0);
    auto loss = [&] {
        ref.layer_norm_forward(y, mean, rstd, x, w, b, 1e-5f);
        return dot(y.data, dy.data);
    };
    loss();
    ref.layer_norm_backward(dx, dw, db, dy, x, w, mean, rstd);
    EXPECT_LT(gradient_error(x.data, dx.data, loss), kFiniteDifferenceTolerance);
    EXPECT_LT(gradient_error(w.data, dw.data, loss), kFiniteDifferenceTolerance);
    EXPECT_LT(gradient_error(b.data, db.data, loss), kFiniteDifferenceTolerance);
}

TEST(RmsNorm, ReferenceBackwardMatchesFiniteDifferences) {
    auto& ref = reference_backend();
    const int64_t N = 3, C = 7;
    HostF64 x({N, C}, 41), w({C}, 42), dy({N, C}, 43);
    HostF64 y({N, C}, 0), rstd({N}, 0), dx({N, C}, 0), dw({C}, 0);
    auto loss = [&] {
        ref.rms_norm_forward(y, rstd, x, w, 1e-5f);
        return dot(y.data, dy.data);
    };
    loss();
    ref.rms_norm_backward(dx, dw, dy, x, w, rstd);
    EXPECT_LT(gradient_error(x.data, dx.data, loss), kFiniteDifferenceTolerance);
    EXPECT_LT(gradient_error(w.data, dw.data, loss), kFiniteDifferenceTolerance);
}

TEST(QkNorm, ReferenceBackwardMatchesFiniteDifferences) {
    auto& ref = reference_backend();
    const int64_t B = 1, T = 2, H = 4, Hkv = 2, D = 4, W = (H + 2 * Hkv) * D;
    HostF64 qkv({B, T, W}, 51), wq({D}, 52), wk({D}, 53), dy({B, T, W}, 54);
    HostF64 y({B, T, W}, 0), rstd({B, T, H + Hkv}, 0), dqkv({B, T, W}, 0), dwq({D}, 0), dwk({D}, 0);
    auto loss = [&] {
        ref.qk_norm_forward(y, rstd, qkv, wq, wk, H, Hkv, 1e-6f);
        return dot(y.data, dy.data);
    };
    loss();
    ref.qk_norm_backward(dqkv, dwq, dwk, dy, qkv, wq, wk, rstd, H, Hkv);
    EXPECT_LT(gradient_error(qkv.data, dqkv.data, loss), kFiniteDifferenceTolerance);
    EXPECT_LT(gradient_error(wq.data, dwq.data, loss), kFiniteDifferenceTolerance);
    EXPECT_LT(gradient_error(wk.data, dwk.data, loss), kFiniteDifferenceTolerance);
}

}  // namespace
}  // namespace tandem::testing

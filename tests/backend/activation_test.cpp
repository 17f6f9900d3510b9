// GELU (tanh approximation) and SwiGLU: every backend against reference/, reference/ against
// hand-computed values and finite differences.
#include <gtest/gtest.h>

#include <cmath>

#include "conformance.h"
#include "gradcheck.h"

namespace tandem::testing {
namespace {

TEST(Gelu, MatchesReferenceForwardAndBackward) {
    for (const Target& target : conformance_targets())
        for (auto [N, C] : {std::pair<int64_t, int64_t>{1, 1}, {7, 33}, {3, 4097}}) {
            const std::string what =
                target.label() + " N=" + std::to_string(N) + " C=" + std::to_string(C);
            Pair x = values(target, random_normal(N * C, 1, 3.0f), {N, C});
            Pair y = overwritten(target, {N, C}, target.dtype);
            run_both(target, [&](backend::Backend& be, Side s) { be.gelu_forward(s(y), s(x)); });
            expect_close(y, kDefaultTolerance.of(target.dtype), what + " y");

            Pair dy = values(target, random_normal(N * C, 2), {N, C});
            Pair dx = values(target, random_normal(N * C, 3), {N, C});  // overwritten
            run_both(target,
                     [&](backend::Backend& be, Side s) { be.gelu_backward(s(dx), s(dy), s(x)); });
            expect_close(dx, kDefaultTolerance.of(target.dtype), what + " dx");

            // dx may alias dy.
            run_both(target,
                     [&](backend::Backend& be, Side s) { be.gelu_backward(s(dy), s(dy), s(x)); });
            expect_close(dy, kDefaultTolerance.of(target.dtype), what + " dx aliasing dy");
        }
}

TEST(Swiglu, MatchesReferenceForwardAndBackward) {
    for (const Target& target : conformance_targets())
        for (auto [N, F] : {std::pair<int64_t, int64_t>{1, 1}, {7, 33}, {3, 4097}, {16, 48}}) {
            const std::string what =
                target.label() + " N=" + std::to_string(N) + " F=" + std::to_string(F);
            Pair gate_up = values(target, random_normal(N * 2 * F, 4, 3.0f), {N, 2 * F});
            Pair y = overwritten(target, {N, F}, target.dtype);
            run_both(target,
                     [&](backend::Backend& be, Side s) { be.swiglu_forward(s(y), s(gate_up)); });
            expect_close(y, kDefaultTolerance.of(target.dtype), what + " y");

            Pair dy = values(target, random_normal(N * F, 5), {N, F});
            Pair dgate_up = values(target, random_normal(N * 2 * F, 6), {N, 2 * F});
            run_both(target, [&](backend::Backend& be, Side s) {
                be.swiglu_backward(s(dgate_up), s(dy), s(gate_up));
            });
            expect_close(dgate_up, kDefaultTolerance.of(target.dtype), what + " dgate_up");
        }
}

TEST(Gelu, ReferenceMatchesTheTanhFormulaAtPlusAndMinusOne) {
    // 0.5 * (1 + tanh(sqrt(2/pi) * 1.044715)) and its odd counterpart, computed by hand.
    auto& ref = reference_backend();
    HostF64 x({3}, 0), y({3}, 0);
    x.data = {1.0, -1.0, 0.0};
    ref.gelu_forward(y, x);
    EXPECT_NEAR(y.data[0], 0.8411919906082768, 1e-15);
    EXPECT_NEAR(y.data[1], -0.15880800939172324, 1e-15);
    EXPECT_EQ(y.data[2], 0.0);
}

TEST(Swiglu, ReferenceMatchesSiluTimesUp) {
    // silu(1) * 3 = 3 / (1 + e^-1); silu(0) * anything = 0.
    auto& ref = reference_backend();
    HostF64 gate_up({2, 2}, 0), y({2, 1}, 0);
    gate_up.data = {1.0, 3.0, 0.0, 5.0};
    ref.swiglu_forward(y, gate_up);
    EXPECT_NEAR(y.data[0], 2.193175735890015, 1e-15);
    EXPECT_EQ(y.data[1], 0.0);
}

TEST(Gelu, ReferenceBackwardMatchesFiniteDifferences) {
    auto& ref = reference_backend();
    HostF64 x({33}, 71, 2.0f), dy({33}, 72), y({33}, 0), dx({33}, 0);
    auto loss = [&] {
        ref.gelu_forward(y, x);
        return dot(y.data, dy.data);
    };
    ref.gelu_backward(dx, dy, x);
    EXPECT_LT(gradient_error(x.data, dx.data, loss), kFiniteDifferenceTolerance);
}

TEST(Swiglu, ReferenceBackwardMatchesFiniteDifferences) {
    auto& ref = reference_backend();
    const int64_t N = 3, F = 5;
    HostF64 gate_up({N, 2 * F}, 81, 2.0f), dy({N, F}, 82), y({N, F}, 0), dgate_up({N, 2 * F}, 0);
    auto loss = [&] {
        ref.swiglu_forward(y, gate_up);
        return dot(y.data, dy.data);
    };
    ref.swiglu_backward(dgate_up, dy, gate_up);
    EXPECT_LT(gradient_error(gate_up.data, dgate_up.data, loss), kFiniteDifferenceTolerance);
}

}  // namespace
}  // namespace tandem::testing

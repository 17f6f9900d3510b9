// Matrix products (all four transposition combinations, bias, accumulate, batched) and the bias
// gradient: every backend against reference/, reference/ against hand-computed products.
#include <gtest/gtest.h>

#include "conformance.h"
#include "gradcheck.h"

namespace tandem::testing {
namespace {

struct Mnk {
    int64_t M, N, K;
};
constexpr Mnk kMatmulSizes[] = {{1, 1, 1}, {7, 33, 17}, {33, 7, 65}, {64, 48, 96}, {5, 130, 3}};

std::string describe(const Target& t, Mnk s, bool ta, bool tb, bool bias, bool acc) {
    return t.label() + " M=" + std::to_string(s.M) + " N=" + std::to_string(s.N) +
           " K=" + std::to_string(s.K) + (ta ? " trans_a" : "") + (tb ? " trans_b" : "") +
           (bias ? " bias" : "") + (acc ? " accumulate" : "");
}

TEST(Matmul, MatchesReferenceForEveryTranspositionWithBiasAndAccumulate) {
    for (const Target& target : conformance_targets())
        for (Mnk s : kMatmulSizes)
            for (int combo = 0; combo < 16; ++combo) {
                const bool ta = combo & 1, tb = combo & 2, has_bias = combo & 4, acc = combo & 8;
                const auto [M, N, K] = s;
                const Shape a_shape = ta ? Shape{K, M} : Shape{M, K};
                const Shape b_shape = tb ? Shape{N, K} : Shape{K, N};
                Pair a = values(target, random_normal(M * K, 1 + combo), a_shape);
                Pair b = values(target, random_normal(K * N, 101 + combo), b_shape);
                Pair bias = has_bias ? values(target, random_normal(N, 3), {N}) : none();
                // Random contents: overwritten, or kept and added to when accumulating.
                Pair out = values(target, random_normal(M * N, 4), {M, N});
                run_both(target, [&](backend::Backend& be, Side side) {
                    be.matmul(side(out), side(a), side(b), side(bias), ta, tb, acc);
                });
                expect_close(out, kDefaultTolerance.of(target.dtype),
                             describe(target, s, ta, tb, has_bias, acc));
            }
}

TEST(Matmul, MatchesReferenceWhenBatched) {
    const int64_t S = 5;
    for (const Target& target : conformance_targets())
        for (Mnk s : {Mnk{7, 33, 8}, Mnk{1, 16, 5}, Mnk{33, 33, 64}})
            for (int combo = 0; combo < 8; ++combo) {
                const bool ta = combo & 1, tb = combo & 2, acc = combo & 4;
                const auto [M, N, K] = s;
                Pair a = values(target, random_normal(S * M * K, 5 + combo),
                                ta ? Shape{S, K, M} : Shape{S, M, K});
                Pair b = values(target, random_normal(S * K * N, 6 + combo),
                                tb ? Shape{S, N, K} : Shape{S, K, N});
                Pair out = values(target, random_normal(S * M * N, 7), {S, M, N});
                run_both(target, [&](backend::Backend& be, Side side) {
                    be.matmul(side(out), side(a), side(b), Tensor(), ta, tb, acc);
                });
                expect_close(out, kDefaultTolerance.of(target.dtype),
                             describe(target, s, ta, tb, false, acc) + " S=5");
            }
}

TEST(BiasBackward, MatchesReferenceAndAccumulates) {
    for (const Target& target : conformance_targets())
        for (auto [M, N] : {std::pair<int64_t, int64_t>{1, 1}, {7, 33}, {4097, 7}, {3, 4097}}) {
            Pair dout = values(target, random_normal(M * N, 8), {M, N});
            Pair dbias = values(target, random_normal(N, 9), {N});
            run_both(target,
                     [&](backend::Backend& be, Side s) { be.bias_backward(s(dbias), s(dout)); });
            expect_close(dbias, kDefaultTolerance.of(target.dtype),
                         target.label() + " M=" + std::to_string(M) + " N=" + std::to_string(N));
        }
}

TEST(Matmul, ReferenceMultipliesTwoByTwoMatrices) {
    auto& ref = reference_backend();
    HostF64 a({2, 2}, 0), b({2, 2}, 0), bias({2}, 0), out({2, 2}, 0);
    a.data = {1, 2, 3, 4};
    b.data = {5, 6, 7, 8};
    bias.data = {10, 20};
    ref.matmul(out, a, b, Tensor(), false, false, false);
    EXPECT_EQ(out.data, (std::vector<double>{19, 22, 43, 50}));
    ref.matmul(out, a, b, Tensor(), true, false, false);  // a^T b
    EXPECT_EQ(out.data, (std::vector<double>{26, 30, 38, 44}));
    ref.matmul(out, a, b, Tensor(), false, true, false);  // a b^T
    EXPECT_EQ(out.data, (std::vector<double>{17, 23, 39, 53}));
    ref.matmul(out, a, b, bias, true, true, false);  // a^T b^T + bias
    EXPECT_EQ(out.data, (std::vector<double>{23 + 10, 31 + 20, 34 + 10, 46 + 20}));
    ref.matmul(out, a, b, bias, true, true, true);  // accumulates onto the previous result
    EXPECT_EQ(out.data, (std::vector<double>{66, 102, 88, 132}));
}

TEST(BiasBackward, ReferenceIsTheGradientOfTheMatmulBias) {
    auto& ref = reference_backend();
    const int64_t M = 5, N = 3, K = 4;
    HostF64 a({M, K}, 61), b({K, N}, 62), bias({N}, 63), dout({M, N}, 64), out({M, N}, 0);
    HostF64 dbias({N}, 0);
    auto loss = [&] {
        ref.matmul(out, a, b, bias, false, false, false);
        return dot(out.data, dout.data);
    };
    ref.bias_backward(dbias, dout);
    EXPECT_LT(gradient_error(bias.data, dbias.data, loss), kFiniteDifferenceTolerance);
}

}  // namespace
}  // namespace tandem::testing

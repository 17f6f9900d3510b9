// The residual add, scale, and the double-accumulated sums: every backend against reference/.
#include <gtest/gtest.h>

#include <algorithm>

#include "conformance.h"
#include "gradcheck.h"

namespace tandem::testing {
namespace {

constexpr int64_t kLengths[] = {1, 7, 33, 4097, 1 << 20};

TEST(Add, MatchesReferenceAlsoWhenOutputAliasesAnInput) {
    for (const Target& target : conformance_targets())
        for (int64_t n : kLengths) {
            const std::string what = target.label() + " n=" + std::to_string(n);
            Pair a = values(target, random_normal(n, 1), {n});
            Pair b = values(target, random_normal(n, 2), {n});
            Pair out = values(target, random_normal(n, 3), {n});
            run_both(target, [&](backend::Backend& be, Side s) { be.add(s(out), s(a), s(b)); });
            expect_close(out, kDefaultTolerance.of(target.dtype), what);
            run_both(target, [&](backend::Backend& be, Side s) { be.add(s(a), s(a), s(b)); });
            expect_close(a, kDefaultTolerance.of(target.dtype), what + " out = a");
            run_both(target, [&](backend::Backend& be, Side s) { be.add(s(b), s(a), s(b)); });
            expect_close(b, kDefaultTolerance.of(target.dtype), what + " out = b");
        }
}

TEST(Scale, MatchesReference) {
    for (const Target& target : conformance_targets())
        for (int64_t n : kLengths) {
            Pair x = values(target, random_normal(n, 4), {n});
            run_both(target, [&](backend::Backend& be, Side s) { be.scale(s(x), 0.37f); });
            expect_close(x, kDefaultTolerance.of(target.dtype),
                         target.label() + " n=" + std::to_string(n));
        }
}

TEST(FillZero, ZeroesSmallBuffersAndOnesLargerThanTheCaches) {
    // 5 Mi + 3 floats: past the cpu backend's 16 MB streaming threshold, with a tail that is not
    // a whole vector.
    for (const Target& target : conformance_targets())
        for (int64_t n : {int64_t(7), int64_t(4097), int64_t(5 << 20) + 3}) {
            Pair x = values(target, random_normal(n, 5), {n});
            run_both(target, [&](backend::Backend& be, Side s) { be.fill_zero(s(x)); });
            const std::vector<float> got = x.got.to_host();
            EXPECT_EQ(std::count(got.begin(), got.end(), 0.0f), n)
                << target.label() << " n=" << n;
        }
}

TEST(Sum, MatchesReferenceInDoubleForSumAndSumOfSquares) {
    for (const Target& target : conformance_targets())
        for (int64_t n : kLengths) {
            const std::string what = target.label() + " n=" + std::to_string(n);
            // A non-zero mean, so that the sum is not a cancellation of noise.
            Pair x = values(target, random_uniform(n, 5, -1.0f, 3.0f), {n});
            const double got = target.backend->sum(x.got), want = reference_backend().sum(x.want);
            EXPECT_NEAR(got, want, kReductionTolerance.of(target.dtype) * std::abs(want)) << what;
            const double got_sq = target.backend->sum_squares(x.got);
            const double want_sq = reference_backend().sum_squares(x.want);
            EXPECT_NEAR(got_sq, want_sq, kReductionTolerance.of(target.dtype) * want_sq) << what;
        }
}

TEST(Sum, IsTheSameOnRepeatedCalls) {
    for (const Target& target : conformance_targets()) {
        const int64_t n = 3 << 20;
        Pair x = values(target, random_normal(n, 6), {n});
        const double first = target.backend->sum_squares(x.got);
        for (int i = 0; i < 3; ++i) EXPECT_EQ(target.backend->sum_squares(x.got), first);
    }
}

TEST(Sum, ReferenceAddsHandPickedValuesExactly) {
    auto& ref = reference_backend();
    HostF64 x({4}, 0);
    x.data = {1.5, -2.0, 0.25, 3.0};
    EXPECT_EQ(ref.sum(x), 2.75);
    EXPECT_EQ(ref.sum_squares(x), 2.25 + 4.0 + 0.0625 + 9.0);
    ref.scale(x, 2.0f);
    EXPECT_EQ(x.data, (std::vector<double>{3.0, -4.0, 0.5, 6.0}));
}

}  // namespace
}  // namespace tandem::testing

// The AdamW step: every backend against reference/ (with and without a clipping scale on the
// gradient), and reference/ against the closed form of a first step.
#include <gtest/gtest.h>

#include <cmath>

#include "conformance.h"
#include "gradcheck.h"

namespace tandem::testing {
namespace {

TEST(AdamW, MatchesReferenceOnParamAndMoments) {
    for (const Target& target : conformance_targets())
        for (int64_t n : {1, 7, 4097, 100003})
            for (int64_t step : {1, 7}) {
                const std::string what =
                    target.label() + " n=" + std::to_string(n) + " step=" + std::to_string(step);
                const DType moments = backend::stats_dtype(target.dtype);
                Pair param = values(target, random_normal(n, 1), {n});
                Pair grad = values(target, random_normal(n, 2, 0.1f), {n});
                Pair m = pair_of(target, random_normal(n, 3, 0.01f), {n}, moments);
                Pair v = pair_of(target, random_uniform(n, 4, 0.0f, 1e-3f), {n}, moments);
                backend::AdamWParams hp;
                hp.lr = 3e-3f;
                hp.weight_decay = 0.1f;
                hp.step = step;
                hp.grad_scale = step == 7 ? 0.37f : 1.0f;  // clipped, then not
                run_both(target, [&](backend::Backend& be, Side s) {
                    be.adamw_update(s(param), s(grad), s(m), s(v), hp);
                });
                expect_close(param, kDefaultTolerance.of(target.dtype), what + " param");
                expect_close(m, kDefaultTolerance.of(target.dtype), what + " m");
                expect_close(v, kDefaultTolerance.of(target.dtype), what + " v");
            }
}

TEST(AdamW, ReferenceFirstStepMovesEachParameterByLrTimesTheSignOfItsGradient) {
    // From m = v = 0, the bias-corrected moments of step 1 are g and g^2, so
    // param = param * (1 - lr wd) - lr * g / (|g| + eps).
    auto& ref = reference_backend();
    const int64_t n = 9;
    HostF64 param({n}, 111), grad({n}, 112), m({n}, 0), v({n}, 0);
    const std::vector<double> before = param.data;
    backend::AdamWParams hp;
    hp.lr = 1e-2f;
    hp.weight_decay = 0.5f;
    hp.eps = 1e-3f;
    hp.step = 1;
    ref.adamw_update(param, grad, m, v, hp);
    for (int64_t i = 0; i < n; ++i) {
        const double lr = hp.lr, g = grad.data[i];
        const double want =
            before[i] * (1.0 - lr * double(hp.weight_decay)) - lr * g / (std::abs(g) + hp.eps);
        EXPECT_NEAR(param.data[i], want, 1e-14) << i;
        EXPECT_NEAR(m.data[i], (1.0 - double(hp.beta1)) * g, 1e-15) << i;
        EXPECT_NEAR(v.data[i], (1.0 - double(hp.beta2)) * g * g, 1e-15) << i;
    }
}

}  // namespace
}  // namespace tandem::testing

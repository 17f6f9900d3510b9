// The cpu backend's reductions (parameter-gradient sums, bias gradient, global sums) give the
// same bits whatever the number of OpenMP threads, so a run is reproducible across machines
// with different core counts.
#include <gtest/gtest.h>
#include <omp.h>

#include "backend/registry.h"
#include "common/test_util.h"

namespace tandem::testing {
namespace {

// Runs fn with n threads and restores the previous setting.
template <typename Fn>
void with_threads(int n, Fn&& fn) {
    const int saved = omp_get_max_threads();
    omp_set_num_threads(n);
    fn();
    omp_set_num_threads(saved);
}

TEST(Determinism, CpuGradientSumsDoNotDependOnTheThreadCount) {
    if (!backend::is_backend_available("cpu")) GTEST_SKIP() << "no cpu backend";
    backend::Backend& be = backend::get_backend("cpu");
    const int64_t N = 1000, C = 33;
    DeviceTensor x = DeviceTensor::from(be, random_normal(N * C, 1), {N, C});
    DeviceTensor dy = DeviceTensor::from(be, random_normal(N * C, 2), {N, C});
    DeviceTensor w = DeviceTensor::from(be, random_normal(C, 3), {C});
    DeviceTensor rstd(be, DType::F32, {N}), y(be, DType::F32, {N, C});
    be.rms_norm_forward(y, rstd, x, w, 1e-5f);

    std::vector<std::vector<float>> dweights, dbiases;
    std::vector<double> sums;
    for (int threads : {1, 2, 3, 7}) {
        with_threads(threads, [&] {
            DeviceTensor dx(be, DType::F32, {N, C}), dw(be, DType::F32, {C}),
                db(be, DType::F32, {C});
            be.rms_norm_backward(dx, dw, dy, x, w, rstd);
            be.bias_backward(db, dy);
            dweights.push_back(dw.to_host());
            dbiases.push_back(db.to_host());
            sums.push_back(be.sum_squares(dy.t));
        });
    }
    for (size_t i = 1; i < sums.size(); ++i) {
        EXPECT_EQ(dweights[i], dweights[0]) << i;
        EXPECT_EQ(dbiases[i], dbiases[0]) << i;
        EXPECT_EQ(sums[i], sums[0]) << i;
    }
}

}  // namespace
}  // namespace tandem::testing

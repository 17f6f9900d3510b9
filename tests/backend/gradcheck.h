// Finite-difference checks of reference/'s backward kernels against its own forward, in f64.
// reference/ works on any host memory, so the tensors here are views of std::vector<double>.
#pragma once

#include <cmath>
#include <functional>
#include <vector>

#include "common/test_util.h"
#include "tolerance.h"

namespace tandem::testing {

// An f64 host tensor with N(0, scale^2) values from `seed` (zeros when seed is 0).
struct HostF64 {
    std::vector<double> data;
    Shape shape;

    HostF64(Shape s, uint64_t seed, float scale = 1.0f) : data(s.numel(), 0.0), shape(s) {
        if (seed == 0) return;
        const std::vector<float> r = random_normal(s.numel(), seed, scale);
        data.assign(r.begin(), r.end());
    }
    Tensor t() { return Tensor(data.data(), DType::F64, shape); }
    operator Tensor() { return t(); }
};

inline double dot(const std::vector<double>& a, const std::vector<double>& b) {
    double s = 0;
    for (size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
    return s;
}

// ||analytic - numeric|| / ||numeric||, where numeric[i] is the central difference of loss()
// in x[i]. loss() must read x afresh on every call.
inline double gradient_error(std::vector<double>& x, const std::vector<double>& analytic,
                             const std::function<double()>& loss) {
    const double h = kFiniteDifferenceStep;
    double diff = 0, norm = 0;
    for (size_t i = 0; i < x.size(); ++i) {
        const double saved = x[i];
        x[i] = saved + h;
        const double up = loss();
        x[i] = saved - h;
        const double down = loss();
        x[i] = saved;
        const double numeric = (up - down) / (2 * h);
        diff += (analytic[i] - numeric) * (analytic[i] - numeric);
        norm += numeric * numeric;
    }
    return norm == 0 ? std::sqrt(diff) : std::sqrt(diff / norm);
}

}  // namespace tandem::testing

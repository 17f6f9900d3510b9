// Finite-difference gradient checks in double on the reference backend, shared by the layer
// and whole-model tests: f64 device tensors read and written from the host, and central
// differences of a scalar loss compared with an analytic gradient.
#pragma once

#include <algorithm>
#include <cmath>
#include <functional>
#include <vector>

#include "backend/registry.h"
#include "common/test_util.h"

namespace tandem::testing {

inline backend::Backend& reference_backend() { return backend::get_backend("reference"); }

inline std::vector<double> read_f64(Tensor t) {
    TANDEM_ASSERT(t.dtype == DType::F64, t.str());
    std::vector<double> out(t.numel());
    reference_backend().copy_to_host(out.data(), t.data, t.bytes());
    return out;
}

inline void write_f64(Tensor t, const std::vector<double>& values) {
    TANDEM_ASSERT(t.dtype == DType::F64 && static_cast<int64_t>(values.size()) == t.numel(),
                  t.str(), values.size());
    reference_backend().copy_to_device(t.data, values.data(), t.bytes());
}

// An f64 tensor on the reference backend with N(0, scale^2) entries (exact f32 values).
inline DeviceTensor random_f64(Shape shape, uint64_t seed, float scale = 1.0f) {
    return DeviceTensor::from(reference_backend(), random_normal(shape.numel(), seed, scale),
                              shape, DType::F64);
}

inline DeviceTensor zeros_f64(Shape shape) {
    return DeviceTensor(reference_backend(), DType::F64, shape);
}

inline double dot(Tensor a, const std::vector<double>& r) {
    const std::vector<double> x = read_f64(a);
    double s = 0;
    for (size_t i = 0; i < x.size(); ++i) s += x[i] * r[i];
    return s;
}

// ||analytic - numeric|| / ||numeric|| over up to max_points entries of `param` spread evenly
// over the tensor, where numeric is the central difference (loss(p + h) - loss(p - h)) / 2h.
// h = 1e-5 in double: truncation error ~h^2 and rounding ~1e-16/h, both far below the 1e-6
// tolerances the tests use.
inline double finite_difference_error(Tensor param, Tensor grad,
                                      const std::function<double()>& loss, int max_points = 30,
                                      double h = 1e-5) {
    std::vector<double> p = read_f64(param);
    const std::vector<double> g = read_f64(grad);
    const int64_t n = param.numel();
    const int64_t stride = std::max<int64_t>(1, n / max_points);
    double diff = 0, norm = 0;
    for (int64_t i = 0; i < n; i += stride) {
        const double saved = p[i];
        p[i] = saved + h;
        write_f64(param, p);
        const double plus = loss();
        p[i] = saved - h;
        write_f64(param, p);
        const double minus = loss();
        p[i] = saved;
        const double numeric = (plus - minus) / (2 * h);
        diff += (g[i] - numeric) * (g[i] - numeric);
        norm += numeric * numeric;
    }
    write_f64(param, p);
    // A loss that does not depend on the tensor at all would pass vacuously: fail it instead.
    if (norm == 0) return INFINITY;
    return std::sqrt(diff / norm);
}

}  // namespace tandem::testing

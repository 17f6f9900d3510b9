// Helpers for the conformance tests: every (backend under test, compute dtype it supports) is a
// Target, and each test runs a kernel on the target and on reference/ (f32, inputs rounded to the
// target dtype) and compares the outputs. A new backend is tested by these files unchanged.
#pragma once

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "backend/registry.h"
#include "common/test_util.h"
#include "tolerance.h"

namespace tandem::testing {

struct Target {
    backend::Backend* backend;
    DType dtype;
    std::string label() const {
        return std::string(backend->name()) + "/" + std::string(dtype_name(dtype));
    }
};

// Every backend under test in each float dtype it computes in (f32 first).
inline std::vector<Target> conformance_targets() {
    std::vector<Target> targets;
    for (const std::string& name : backends_under_test()) {
        backend::Backend& be = backend::get_backend(name);
        for (DType dtype : {DType::F32, DType::BF16, DType::F16})
            if (be.supports(dtype)) targets.push_back({&be, dtype});
    }
    return targets;
}

inline backend::Backend& reference_backend() {
    return backend::get_backend("reference");
}

// The values a tensor of `dtype` can hold, seen as f32: what reference/ gets as input.
inline std::vector<float> rounded_to(DType dtype, std::vector<float> values) {
    for (float& x : values) {
        if (dtype == DType::BF16) x = f32_from_bf16(bf16_from_f32(x));
        if (dtype == DType::F16) x = f32_from_f16(f16_from_f32(x));
    }
    return values;
}

// The same host values as a tensor on the target (in its dtype) and on reference/ (f32).
struct Pair {
    DeviceTensor got;
    DeviceTensor want;
};
inline Pair pair_of(const Target& target, const std::vector<float>& host, Shape shape,
                    DType dtype) {
    return {DeviceTensor::from(*target.backend, host, shape, dtype),
            DeviceTensor::from(reference_backend(), rounded_to(dtype, host), shape, DType::F32)};
}
// Activations and weights in the compute dtype.
inline Pair values(const Target& target, const std::vector<float>& host, Shape shape) {
    return pair_of(target, host, shape, target.dtype);
}
// An output the kernel overwrites: filled with random values, so that a kernel that skips an
// element (or adds to it) is caught.
inline Pair overwritten(const Target& target, Shape shape, DType dtype) {
    return pair_of(target, random_normal(shape.numel(), 999), shape, dtype);
}
inline Pair ints(const Target& target, const std::vector<int32_t>& host, Shape shape) {
    return {DeviceTensor::from_ints(*target.backend, host, shape),
            DeviceTensor::from_ints(reference_backend(), host, shape)};
}
// An empty tensor (no bias, no learned positions).
inline Pair none() {
    return {};
}

// Picks one side of every Pair, so that one lambda runs a kernel on the target and on reference/:
//   run_both(target, [&](backend::Backend& be, Side s) { be.gelu_forward(s(y), s(x)); });
struct Side {
    bool is_reference;
    Tensor operator()(const Pair& p) const { return is_reference ? p.want.t : p.got.t; }
};
template <typename Fn>
void run_both(const Target& target, Fn&& fn) {
    fn(*target.backend, Side{false});
    fn(reference_backend(), Side{true});
}

inline void expect_close(const Pair& p, double tolerance, const std::string& what) {
    const std::vector<float> got = p.got.to_host(), want = p.want.to_host();
    const double err = relative_error(got, want);
    EXPECT_LE(err, tolerance) << what << ": relative error " << err << " (max abs diff "
                              << max_abs_diff(got, want) << ")";
}

}  // namespace tandem::testing

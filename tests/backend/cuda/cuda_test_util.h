// Helpers of the CUDA tests: the skip with a reason where no GPU is usable, and pairs of tensors
// holding the same values on cuda (in the compute dtype under test) and on reference/ (f32,
// rounded to that dtype first), so that only the kernel's own arithmetic is compared.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <ostream>
#include <string>
#include <vector>

#include "backend/registry.h"
#include "common/test_util.h"
#include "core/error.h"

namespace tandem {
// gtest prints parameters with this (else "1-byte object <02>").
inline void PrintTo(DType dtype, std::ostream* out) { *out << dtype_name(dtype); }
}  // namespace tandem

namespace tandem::testing {

// Why "cuda" is unavailable (the registry's reason: not built with CUDA, no driver, no GPU).
inline std::string cuda_unavailable_reason() {
    try {
        backend::get_backend("cuda");
        return "available";
    } catch (const Error& e) {
        return e.what();
    }
}

// Every test starts with this line: CI has nvcc but no GPU, and shows the reason.
#define TANDEM_SKIP_WITHOUT_CUDA()                                            \
    if (!::tandem::backend::is_backend_available("cuda"))                     \
    GTEST_SKIP() << "no CUDA GPU: " << ::tandem::testing::cuda_unavailable_reason()

// Relative-error budgets (||got - want|| / ||want||) per compute dtype; the same numbers as the
// shared conformance suite (tests/backend/tolerance.h): f32 sums drift like sqrt(terms) * 6e-8,
// bf16 keeps 8 significant bits (4e-3 per stored value) and the bound allows a few roundings.
struct Budget {
    double f32, bf16;
    double of(DType dtype) const { return dtype == DType::BF16 ? bf16 : f32; }
};
inline constexpr Budget kDefaultBudget{1e-5, 1.6e-2};
// Attention backward cancels in dp - delta; bf16 also stores the forward output used by delta.
inline constexpr Budget kAttentionBackwardBudget{2e-5, 3e-2};

inline backend::Backend& cuda_backend() { return backend::get_backend("cuda"); }
inline backend::Backend& reference_backend() { return backend::get_backend("reference"); }

inline std::vector<float> rounded_to(DType dtype, std::vector<float> values) {
    if (dtype == DType::BF16)
        for (float& x : values) x = f32_from_bf16(bf16_from_f32(x));
    return values;
}

// The same values on cuda (dtype) and reference (f32, rounded to dtype).
struct Pair {
    DeviceTensor got, want;
    Tensor side(bool is_reference) const { return is_reference ? want.t : got.t; }
};
inline Pair make_pair(const std::vector<float>& host, Shape shape, DType dtype) {
    return {DeviceTensor::from(cuda_backend(), host, shape, dtype),
            DeviceTensor::from(reference_backend(), rounded_to(dtype, host), shape, DType::F32)};
}
inline Pair make_ints(const std::vector<int32_t>& host, Shape shape) {
    return {DeviceTensor::from_ints(cuda_backend(), host, shape),
            DeviceTensor::from_ints(reference_backend(), host, shape)};
}
inline Pair make_zeros(Shape shape, DType dtype) {
    return make_pair(std::vector<float>(shape.numel(), 0.0f), shape, dtype);
}
// A tensor whose every element must be overwritten: NaN, so that a skipped element shows.
inline Pair make_poisoned(Shape shape, DType dtype) {
    return make_pair(std::vector<float>(shape.numel(), std::numeric_limits<float>::quiet_NaN()),
                     shape, dtype);
}

// Picks one side of every Pair: run_both([&](backend::Backend& be, auto s) { ... s(x) ... }).
struct Side {
    bool is_reference;
    Tensor operator()(const Pair& p) const { return p.side(is_reference); }
};
template <typename Fn>
void run_both(Fn&& fn) {
    fn(cuda_backend(), Side{false});
    fn(reference_backend(), Side{true});
}

inline void expect_close(const Pair& p, double tolerance, const std::string& what) {
    const std::vector<float> got = p.got.to_host(), want = p.want.to_host();
    for (size_t i = 0; i < got.size(); ++i)
        if (std::isnan(got[i]) && !std::isnan(want[i])) {
            ADD_FAILURE() << what << ": element " << i << " is NaN (never written?)";
            return;
        }
    const double err = relative_error(got, want);
    EXPECT_LE(err, tolerance) << what << ": relative error " << err << " (max abs diff "
                              << max_abs_diff(got, want) << ")";
}

// Raw bytes of a cuda tensor, for bitwise comparisons.
inline std::vector<unsigned char> bytes_of(const DeviceTensor& t) {
    std::vector<unsigned char> out(t.t.bytes());
    cuda_backend().copy_to_host(out.data(), t.t.data, out.size());
    return out;
}

}  // namespace tandem::testing

// How far a backend may be from reference/ in each compute dtype, as the relative error
// ||got - want|| / ||want|| (tandem::testing::relative_error). Inputs are rounded to the compute
// dtype before reference/ sees them, so only the kernel's own arithmetic is measured.
#pragma once

#include "core/dtype.h"
#include "core/error.h"

namespace tandem::testing {

struct Tolerance {
    double f32;
    double bf16;
    double f16;

    double of(DType dtype) const {
        switch (dtype) {
            case DType::F32:
                return f32;
            case DType::BF16:
                return bf16;
            case DType::F16:
                return f16;
            default:
                TANDEM_ASSERT(false, "no tolerance for", dtype_name(dtype));
        }
    }
};

// Most kernels: f32 sums of up to a few thousand terms, with a relative rounding error that
// grows like sqrt(terms) * 6e-8. bf16 keeps 8 significant bits (2^-8 = 4e-3 per stored value)
// and f16 keeps 11 (5e-4); the bounds allow a few such roundings between input and output.
inline constexpr Tolerance kDefaultTolerance{1e-5, 1.6e-2, 2e-3};

// Sums and sums of squares are accumulated in double on every backend: only the order of the
// additions differs.
inline constexpr Tolerance kReductionTolerance{1e-10, 1e-10, 1e-10};

// Attention backward chains three products (dP = dO V^T, dS = P (dP - delta), dQ = dS K) and
// subtracts delta = rowsum(P dP), which cancels. In f32 that stays near 5e-7 (the default
// bound holds); in bf16 and f16 the backend stores P in the compute dtype before dV = P^T dO,
// one rounding more than the other kernels, so those entries are about twice the default.
inline constexpr Tolerance kAttentionBackwardTolerance{1e-5, 3e-2, 4e-3};

// Reference self-checks: f64 central differences with step 1e-6 are good to about 1e-9
// (truncation ~ step^2, cancellation ~ 1e-16 / step).
inline constexpr double kFiniteDifferenceStep = 1e-6;
inline constexpr double kFiniteDifferenceTolerance = 1e-6;

}  // namespace tandem::testing

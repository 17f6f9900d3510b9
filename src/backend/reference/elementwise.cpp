// Reference residual add, in-place scale, and the double-accumulated sums.
#include "backend/reference/kernels.h"

namespace tandem::backend::reference {

template <typename Real>
void add(Tensor out, Tensor a, Tensor b) {
    for (int64_t i = 0; i < out.numel(); ++i)
        out.as<Real>()[i] = static_cast<Real>(double(a.as<Real>()[i]) + b.as<Real>()[i]);
}

template <typename Real>
void scale(Tensor x, float s) {
    for (int64_t i = 0; i < x.numel(); ++i)
        x.as<Real>()[i] = static_cast<Real>(double(x.as<Real>()[i]) * s);
}

template <typename Real>
double sum(Tensor x) {
    double acc = 0;
    for (int64_t i = 0; i < x.numel(); ++i) acc += x.as<Real>()[i];
    return acc;
}

template <typename Real>
double sum_squares(Tensor x) {
    double acc = 0;
    for (int64_t i = 0; i < x.numel(); ++i) acc += double(x.as<Real>()[i]) * x.as<Real>()[i];
    return acc;
}

TANDEM_REFERENCE_INSTANTIATE(add, Tensor, Tensor, Tensor);
TANDEM_REFERENCE_INSTANTIATE(scale, Tensor, float);
template double sum<float>(Tensor);
template double sum<double>(Tensor);
template double sum_squares<float>(Tensor);
template double sum_squares<double>(Tensor);

}  // namespace tandem::backend::reference

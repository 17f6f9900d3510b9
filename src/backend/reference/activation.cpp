// Reference GELU (tanh approximation) and SwiGLU, evaluated in double.
#include <cmath>

#include "backend/reference/kernels.h"

namespace tandem::backend::reference {

namespace {

constexpr double kGeluScale = 0.7978845608028654;  // sqrt(2 / pi)
constexpr double kGeluCubic = 0.044715;

double sigmoid(double g) {
    return 1.0 / (1.0 + std::exp(-g));
}

}  // namespace

template <typename Real>
void gelu_forward(Tensor y, Tensor x) {
    for (int64_t i = 0; i < x.numel(); ++i) {
        const double v = x.as<Real>()[i];
        const double u = kGeluScale * (v + kGeluCubic * v * v * v);
        y.as<Real>()[i] = static_cast<Real>(0.5 * v * (1.0 + std::tanh(u)));
    }
}

template <typename Real>
void gelu_backward(Tensor dx, Tensor dy, Tensor x) {
    // d/dx [x/2 (1 + tanh u)] = (1 + tanh u)/2 + x/2 (1 - tanh^2 u) du/dx,
    // du/dx = sqrt(2/pi) (1 + 3 * 0.044715 x^2).
    for (int64_t i = 0; i < x.numel(); ++i) {
        const double v = x.as<Real>()[i];
        const double th = std::tanh(kGeluScale * (v + kGeluCubic * v * v * v));
        const double du = kGeluScale * (1.0 + 3.0 * kGeluCubic * v * v);
        const double grad = 0.5 * (1.0 + th) + 0.5 * v * (1.0 - th * th) * du;
        dx.as<Real>()[i] = static_cast<Real>(dy.as<Real>()[i] * grad);
    }
}

template <typename Real>
void swiglu_forward(Tensor y, Tensor gate_up) {
    const int64_t N = y.rows(), F = y.cols();
    for (int64_t n = 0; n < N; ++n)
        for (int64_t f = 0; f < F; ++f) {
            const double g = gate_up.as<Real>()[n * 2 * F + f];
            const double u = gate_up.as<Real>()[n * 2 * F + F + f];
            y.as<Real>()[n * F + f] = static_cast<Real>(g * sigmoid(g) * u);
        }
}

template <typename Real>
void swiglu_backward(Tensor dgate_up, Tensor dy, Tensor gate_up) {
    // silu'(g) = sig(g) (1 + g (1 - sig(g))).
    const int64_t N = dy.rows(), F = dy.cols();
    for (int64_t n = 0; n < N; ++n)
        for (int64_t f = 0; f < F; ++f) {
            const double g = gate_up.as<Real>()[n * 2 * F + f];
            const double u = gate_up.as<Real>()[n * 2 * F + F + f];
            const double d = dy.as<Real>()[n * F + f];
            const double sg = sigmoid(g);
            dgate_up.as<Real>()[n * 2 * F + f] = static_cast<Real>(d * u * sg * (1 + g * (1 - sg)));
            dgate_up.as<Real>()[n * 2 * F + F + f] = static_cast<Real>(d * g * sg);
        }
}

TANDEM_REFERENCE_INSTANTIATE(gelu_forward, Tensor, Tensor);
TANDEM_REFERENCE_INSTANTIATE(gelu_backward, Tensor, Tensor, Tensor);
TANDEM_REFERENCE_INSTANTIATE(swiglu_forward, Tensor, Tensor);
TANDEM_REFERENCE_INSTANTIATE(swiglu_backward, Tensor, Tensor, Tensor);

}  // namespace tandem::backend::reference

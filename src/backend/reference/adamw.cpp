// Reference AdamW step, in double, in PyTorch's order of operations (see backend.h).
#include <cmath>

#include "backend/reference/kernels.h"

namespace tandem::backend::reference {

template <typename Real>
void adamw_update(Tensor param, Tensor grad, Tensor m, Tensor v, const AdamWParams& hp) {
    const double lr = hp.lr, b1 = hp.beta1, b2 = hp.beta2;
    const double step_size = lr / (1.0 - std::pow(b1, double(hp.step)));
    const double bias2_sqrt = std::sqrt(1.0 - std::pow(b2, double(hp.step)));
    for (int64_t i = 0; i < param.numel(); ++i) {
        // Rounded as a gradient scaled in place would be.
        const double g = static_cast<Real>(grad.as<Real>()[i] * static_cast<Real>(hp.grad_scale));
        double p = param.as<Real>()[i];
        p *= 1.0 - lr * hp.weight_decay;
        const double mi = b1 * m.as<Real>()[i] + (1.0 - b1) * g;
        const double vi = b2 * v.as<Real>()[i] + (1.0 - b2) * g * g;
        m.as<Real>()[i] = static_cast<Real>(mi);
        v.as<Real>()[i] = static_cast<Real>(vi);
        // The update uses the unrounded moments (a f32 backend rounds them first: a last-bit
        // difference well inside the tolerance).
        p -= step_size * mi / (std::sqrt(vi) / bias2_sqrt + hp.eps);
        param.as<Real>()[i] = static_cast<Real>(p);
    }
}

TANDEM_REFERENCE_INSTANTIATE(adamw_update, Tensor, Tensor, Tensor, Tensor, const AdamWParams&);

}  // namespace tandem::backend::reference

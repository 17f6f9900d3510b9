// Reference softmax cross-entropy over the vocabulary, in double with the max subtracted.
#include <algorithm>
#include <cmath>

#include "backend/reference/kernels.h"

namespace tandem::backend::reference {

template <typename Real>
void cross_entropy_forward(Tensor losses, Tensor lse, Tensor logits, Tensor targets,
                           int32_t ignore_index) {
    const int64_t N = logits.rows(), V = logits.cols();
    for (int64_t n = 0; n < N; ++n) {
        const Real* z = logits.as<Real>() + n * V;
        double mx = z[0];
        for (int64_t v = 1; v < V; ++v) mx = std::max(mx, double(z[v]));
        double denom = 0;
        for (int64_t v = 0; v < V; ++v) denom += std::exp(z[v] - mx);
        const double l = mx + std::log(denom);
        const int32_t target = targets.as<int32_t>()[n];
        TANDEM_ASSERT(target == ignore_index || (target >= 0 && target < V), target, V);
        lse.as<Real>()[n] = static_cast<Real>(l);
        losses.as<Real>()[n] = target == ignore_index ? Real(0) : static_cast<Real>(l - z[target]);
    }
}

template <typename Real>
void cross_entropy_backward(Tensor dlogits, Tensor logits, Tensor lse, Tensor targets,
                            Tensor weights, float dloss, int32_t ignore_index) {
    const int64_t N = logits.rows(), V = logits.cols();
    for (int64_t n = 0; n < N; ++n) {
        const Real* z = logits.as<Real>() + n * V;
        Real* dz = dlogits.as<Real>() + n * V;  // may alias z: each element is read, then written
        const int32_t target = targets.as<int32_t>()[n];
        const double l = lse.as<Real>()[n];
        const double w = weights.empty() ? 1.0 : double(weights.as<Real>()[n]);
        // A row of weight 0 is exactly 0 even where its logits are not finite: a mask drops it.
        const bool is_dropped = target == ignore_index || w == 0.0;
        for (int64_t v = 0; v < V; ++v) {
            const double p = std::exp(z[v] - l);
            const double g = is_dropped ? 0.0 : dloss * w * (p - (v == target ? 1.0 : 0.0));
            dz[v] = static_cast<Real>(g);
        }
    }
}

TANDEM_REFERENCE_INSTANTIATE(cross_entropy_forward, Tensor, Tensor, Tensor, Tensor, int32_t);
TANDEM_REFERENCE_INSTANTIATE(cross_entropy_backward, Tensor, Tensor, Tensor, Tensor, Tensor,
                             float, int32_t);

}  // namespace tandem::backend::reference

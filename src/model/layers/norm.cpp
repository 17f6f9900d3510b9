// The two normalisations, dispatched on the kind.
#include "model/layers/norm.h"

namespace tandem::model {

void norm_forward(backend::Backend& be, Tensor y, const NormSaved& saved, Tensor x,
                  const Norm& n) {
    if (n.kind == NormKind::LayerNorm) {
        be.layer_norm_forward(y, saved.mean, saved.rstd, x, n.weight, n.bias, n.eps);
    } else {
        be.rms_norm_forward(y, saved.rstd, x, n.weight, n.eps);
    }
}

void norm_backward(backend::Backend& be, Tensor dx, const Norm& dn, Tensor dy, Tensor x,
                   const Norm& n, const NormSaved& saved) {
    if (n.kind == NormKind::LayerNorm) {
        be.layer_norm_backward(dx, dn.weight, dn.bias, dy, x, n.weight, saved.mean, saved.rstd);
    } else {
        be.rms_norm_backward(dx, dn.weight, dy, x, n.weight, saved.rstd);
    }
}

}  // namespace tandem::model

// GELU and SwiGLU MLPs: product, activation, product; and back.
#include "model/layers/mlp.h"

namespace tandem::model {

void mlp_forward(backend::Backend& be, Tensor y, const MlpSaved& saved, Tensor x,
                 const MlpWeights& w) {
    linear_forward(be, saved.pre, x, w.in);
    if (w.kind == MlpKind::Gelu) {
        be.gelu_forward(saved.act, saved.pre);
    } else {
        be.swiglu_forward(saved.act, saved.pre);
    }
    linear_forward(be, y, saved.act, w.out);
}

void mlp_backward(backend::Backend& be, Tensor dx, const MlpWeights& dw, const MlpScratch& scratch,
                  Tensor dy, Tensor x, const MlpSaved& saved, const MlpWeights& w) {
    linear_backward(be, scratch.dact, dw.out, dy, saved.act, w.out);
    if (w.kind == MlpKind::Gelu) {
        be.gelu_backward(scratch.dpre, scratch.dact, saved.pre);
    } else {
        be.swiglu_backward(scratch.dpre, scratch.dact, saved.pre);
    }
    linear_backward(be, dx, dw.in, scratch.dpre, x, w.in);
}

}  // namespace tandem::model

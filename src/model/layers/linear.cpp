// Forward and backward of a product with either weight layout.
#include "model/layers/linear.h"

namespace tandem::model {

void linear_forward(backend::Backend& be, Tensor y, Tensor x, const Linear& w) {
    if (w.weight.dtype != x.dtype) {  // inference weights in a storage dtype (f16, Q8_0, ...)
        be.matmul_weights(y, x, w.weight, w.bias, w.is_in_out);
        return;
    }
    // [out, in] weights are read transposed; Conv1D [in, out] weights as they are.
    be.matmul(y, x, w.weight, w.bias, /*trans_a=*/false, /*trans_b=*/!w.is_in_out,
              /*accumulate=*/false);
}

void linear_backward(backend::Backend& be, Tensor dx, const Linear& dw, Tensor dy, Tensor x,
                     const Linear& w) {
    if (!dx.empty()) {
        // dx = dy @ W^T: W [in, out] is transposed, W [out, in] is already dx's right factor.
        be.matmul(dx, dy, w.weight, {}, false, /*trans_b=*/w.is_in_out, false);
    }
    if (w.is_in_out) {
        be.matmul(dw.weight, x, dy, {}, /*trans_a=*/true, false, /*accumulate=*/true);  // x^T dy
    } else {
        be.matmul(dw.weight, dy, x, {}, /*trans_a=*/true, false, /*accumulate=*/true);  // dy^T x
    }
    if (!dw.bias.empty()) be.bias_backward(dw.bias, dy);
}

}  // namespace tandem::model

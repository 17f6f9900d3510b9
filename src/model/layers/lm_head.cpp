// Logits and cross-entropy, forward and backward.
#include "model/layers/lm_head.h"

namespace tandem::model {

double lm_head_forward(backend::Backend& be, const LmHeadSaved& saved, Tensor x, Tensor weight,
                       Tensor targets, int32_t ignore_index) {
    be.matmul(saved.logits, x, weight, {}, false, /*trans_b=*/true, false);
    if (targets.empty()) return 0.0;
    be.cross_entropy_forward(saved.losses, saved.lse, saved.logits, targets, ignore_index);
    return be.sum(saved.losses);
}

void lm_head_backward(backend::Backend& be, Tensor dx, Tensor dweight, const LmHeadSaved& saved,
                      Tensor x, Tensor weight, Tensor targets, Tensor loss_weights, float dloss,
                      int32_t ignore_index) {
    // The logits are dead after the loss, so their memory holds dlogits [N, V]: the largest
    // activation is not allocated twice.
    Tensor dlogits = saved.logits;
    be.cross_entropy_backward(dlogits, saved.logits, saved.lse, targets, loss_weights, dloss,
                              ignore_index);
    be.matmul(dweight, dlogits, x, {}, /*trans_a=*/true, false, /*accumulate=*/true);
    be.matmul(dx, dlogits, weight, {}, false, false, false);
}

}  // namespace tandem::model

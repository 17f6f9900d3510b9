// The language-model head: logits = x W^T with W [V, C] (lm_head.weight, or the token
// embedding when tied), and the cross-entropy loss, mean over targets that are not ignored.
// The final norm before it is a Norm layer of the model.
#pragma once

#include "backend/backend.h"

namespace tandem::model {

struct LmHeadSaved {
    Tensor logits;  // [N, V]; overwritten by dlogits in the backward pass
    Tensor losses;  // [N] per-position loss, 0 where ignored
    Tensor lse;     // [N]
};

// logits [N, V] = x [N, C] @ weight^T. With targets (i32 [N], or empty for inference only) it
// also computes the per-position losses and returns their sum (double, on the host).
double lm_head_forward(backend::Backend& be, const LmHeadSaved& saved, Tensor x, Tensor weight,
                       Tensor targets, int32_t ignore_index);
// Gradient of dloss * sum(loss_weights * losses): dx [N, C] overwritten, dweight [V, C] +=.
// loss_weights [N] in the dtype of losses, or empty for weight 1 everywhere. Destroys logits.
void lm_head_backward(backend::Backend& be, Tensor dx, Tensor dweight, const LmHeadSaved& saved,
                      Tensor x, Tensor weight, Tensor targets, Tensor loss_weights, float dloss,
                      int32_t ignore_index);

}  // namespace tandem::model

// A matrix product with optional bias, in either weight layout found in Hugging Face files:
// nn.Linear stores [out, in] (y = x W^T + b), GPT-2's Conv1D stores [in, out] (y = x W + b).
#pragma once

#include "backend/backend.h"

namespace tandem::model {

struct Linear {
    Tensor weight;           // [out, in], or [in, out] when is_in_out
    Tensor bias;             // [out] or empty
    bool is_in_out = false;  // GPT-2 Conv1D layout
};

// y [N, out] = x [N, in] @ W (+ b). A weight in a storage dtype other than x's (inference: f16,
// bf16, Q8_0, Q4_0) goes through Backend::matmul_weights, read as stored.
void linear_forward(backend::Backend& be, Tensor y, Tensor x, const Linear& w);
// dx [N, in] = dy @ W^T (overwritten; skipped when dx is empty); dw.weight += x^T dy in the
// weight's layout; dw.bias += sum_n dy.
void linear_backward(backend::Backend& be, Tensor dx, const Linear& dw, Tensor dy, Tensor x,
                     const Linear& w);

}  // namespace tandem::model

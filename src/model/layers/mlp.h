// The MLP half of a transformer block: GPT-2's GELU MLP (c_fc, tanh GELU, c_proj, with biases)
// or Llama's SwiGLU MLP (one product with gate_proj and up_proj stacked, silu(gate) * up,
// down_proj). The residual add is the block's job.
#pragma once

#include "backend/backend.h"
#include "model/layers/linear.h"

namespace tandem::model {

enum class MlpKind { Gelu, SwiGlu };

struct MlpWeights {
    MlpKind kind = MlpKind::SwiGlu;
    Linear in;   // GPT-2 c_fc [C, F]; Llama gate_proj and up_proj stacked [2F, C]
    Linear out;  // GPT-2 c_proj [F, C]; Llama down_proj [C, F]
};

struct MlpSaved {
    Tensor pre;  // [N, F] (GELU input) or [N, 2F] (gate and up)
    Tensor act;  // [N, F] the input of the output product
};

struct MlpScratch {
    Tensor dact;  // [N, F]
    Tensor dpre;  // [N, 2F] (SwiGLU) or [N, F] (GELU; may alias dact)
};

// y, x [N, C].
void mlp_forward(backend::Backend& be, Tensor y, const MlpSaved& saved, Tensor x,
                 const MlpWeights& w);
// dx [N, C] is overwritten; the gradients in dw are accumulated.
void mlp_backward(backend::Backend& be, Tensor dx, const MlpWeights& dw, const MlpScratch& scratch,
                  Tensor dy, Tensor x, const MlpSaved& saved, const MlpWeights& w);

}  // namespace tandem::model

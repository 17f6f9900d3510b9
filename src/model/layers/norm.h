// LayerNorm (GPT-2, with bias) and RMSNorm (Llama) behind one view, so a block reads
// `norm_forward(be, y, saved, x, layer.attn_norm)` whatever the family.
#pragma once

#include "backend/backend.h"

namespace tandem::model {

enum class NormKind { LayerNorm, RmsNorm };

struct Norm {
    NormKind kind = NormKind::RmsNorm;
    Tensor weight;  // [C]
    Tensor bias;    // [C] (LayerNorm) or empty
    float eps = 1e-5f;
};

// Statistics saved by the forward pass for the backward pass.
struct NormSaved {
    Tensor mean;  // [N] (LayerNorm only)
    Tensor rstd;  // [N]
};

// y, x [N, C].
void norm_forward(backend::Backend& be, Tensor y, const NormSaved& saved, Tensor x,
                  const Norm& n);
// dx [N, C] += d/dx (the residual stream's running gradient); dn.weight, dn.bias +=.
void norm_backward(backend::Backend& be, Tensor dx, const Norm& dn, Tensor dy, Tensor x,
                   const Norm& n, const NormSaved& saved);

}  // namespace tandem::model

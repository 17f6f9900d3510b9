// Token (and, for GPT-2, learned position) embeddings: the start of the residual stream.
#pragma once

#include "backend/backend.h"

namespace tandem::model {

struct Embedding {
    Tensor wte;  // [V, C]
    Tensor wpe;  // [T_max, C] or empty (RoPE models)
};

// out [B, T, C] = wte[tokens] + wpe[pos_offset + t]; tokens i32 [B, T], already range-checked.
void embedding_forward(backend::Backend& be, Tensor out, Tensor tokens, const Embedding& w,
                       int64_t pos_offset = 0);
// dw.wte, dw.wpe += the gradient of dout [B, T, C].
void embedding_backward(backend::Backend& be, const Embedding& dw, Tensor dout, Tensor tokens);

}  // namespace tandem::model

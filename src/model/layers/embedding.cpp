// Embedding lookups; the backend does the gathering and the scatter-add.
#include "model/layers/embedding.h"

namespace tandem::model {

void embedding_forward(backend::Backend& be, Tensor out, Tensor tokens, const Embedding& w,
                       int64_t pos_offset) {
    be.embedding_forward(out, tokens, w.wte, w.wpe, pos_offset);
}

void embedding_backward(backend::Backend& be, const Embedding& dw, Tensor dout, Tensor tokens) {
    // Only the first T rows of the position table were read, so only they get gradient.
    Tensor dwpe = dw.wpe;
    if (!dwpe.empty()) {
        const int64_t T = tokens.size(1), C = dwpe.size(1);
        dwpe = dwpe.slice(0, T * C).view({T, C});
    }
    be.embedding_backward(dw.wte, dwpe, dout, tokens);
}

}  // namespace tandem::model

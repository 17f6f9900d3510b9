// The block's forward and backward wiring, shared by training and inference.
#include "model/block.h"

namespace tandem::model {

namespace {
Tensor rows(Tensor t) { return t.view({t.rows(), t.cols()}); }
}  // namespace

void block_forward(backend::Backend& be, const BlockActivations& b, Tensor proj,
                   const BlockWeights& w, const AttentionShape& s, const PagedAttention* paged) {
    norm_forward(be, rows(b.attn_in), b.attn_norm, rows(b.x), w.attn_norm);
    attention_forward(be, proj, b.attn, b.attn_in, w.attn, s, paged);
    be.add(b.mid, b.x, proj);
    norm_forward(be, rows(b.mlp_in), b.mlp_norm, rows(b.mid), w.mlp_norm);
    mlp_forward(be, rows(proj), b.mlp, rows(b.mlp_in), w.mlp);
    be.add(b.out, b.mid, proj);
}

void block_backward(backend::Backend& be, Tensor dres, Tensor dnorm, const BlockWeights& dw,
                    const AttentionScratch& attn_scratch, const MlpScratch& mlp_scratch,
                    const BlockActivations& b, const BlockWeights& w, const AttentionShape& s) {
    // dres is d/d(out); the residual add passes it unchanged to mid, and the MLP branch adds
    // its share through the norm.
    mlp_backward(be, rows(dnorm), dw.mlp, mlp_scratch, rows(dres), rows(b.mlp_in), b.mlp, w.mlp);
    norm_backward(be, rows(dres), dw.mlp_norm, rows(dnorm), rows(b.mid), w.mlp_norm, b.mlp_norm);
    attention_backward(be, dnorm, dw.attn, attn_scratch, dres, b.attn_in, b.attn, w.attn, s);
    norm_backward(be, rows(dres), dw.attn_norm, rows(dnorm), rows(b.x), w.attn_norm, b.attn_norm);
}

}  // namespace tandem::model

// The arena layout of the activations: one bump pointer, each tensor 64-byte aligned.
#include "model/activations.h"

#include <cstdint>

#include "model/arena.h"

namespace tandem::model {

size_t layout_activations(Activations& a, void* base, Device device, const ModelConfig& c,
                          DType dtype, int64_t B, int64_t T) {
    ArenaCarver arena(base, device);  // a measuring pass (base null) never dereferences its views
    const DType stats = dtype == DType::F64 ? DType::F64 : DType::F32;
    const int64_t N = B * T, C = c.d_model, F = c.d_ffn, V = c.vocab_size;
    const int64_t QKV = c.qkv_dim(), HD = c.n_heads * c.head_dim;
    const bool is_layer_norm = c.family == Family::Gpt2;
    const int64_t F_pre = c.family == Family::Gpt2 ? F : 2 * F;

    auto residual = [&] { return arena.take(dtype, {B, T, C}); };
    auto norm_saved = [&] {
        NormSaved s;
        if (is_layer_norm) s.mean = arena.take(stats, {N});
        s.rstd = arena.take(stats, {N});
        return s;
    };

    a.tokens = arena.take(DType::I32, {B, T});
    a.targets = arena.take(DType::I32, {B, T});
    a.loss_weights = arena.take(stats, {B, T});
    a.embed = residual();
    a.blocks.resize(c.n_layers);
    Tensor x = a.embed;
    for (auto& b : a.blocks) {
        b.x = x;
        b.attn_in = residual();
        b.attn_norm = norm_saved();
        if (c.qk_norm) {
            b.attn.qkv_raw = arena.take(dtype, {B, T, QKV});
            b.attn.qk_rstd = arena.take(stats, {B, T, c.n_heads + c.n_heads_kv});
        }
        b.attn.qkv = arena.take(dtype, {B, T, QKV});
        b.attn.att = arena.take(dtype, {B, T, HD});
        b.attn.lse = arena.take(stats, {B, c.n_heads, T});
        b.mid = residual();
        b.mlp_in = residual();
        b.mlp_norm = norm_saved();
        b.mlp.pre = arena.take(dtype, {N, F_pre});
        b.mlp.act = arena.take(dtype, {N, F});
        b.out = residual();
        x = b.out;
    }
    a.head_in = residual();
    a.final_norm = norm_saved();
    a.head.logits = arena.take(dtype, {N, V});
    a.head.losses = arena.take(stats, {N});
    a.head.lse = arena.take(stats, {N});

    a.proj = residual();
    a.dres = residual();
    a.dnorm = residual();
    a.attn_scratch.dqkv = arena.take(dtype, {B, T, QKV});
    if (c.qk_norm) a.attn_scratch.dqkv_raw = arena.take(dtype, {B, T, QKV});
    a.attn_scratch.datt = arena.take(dtype, {B, T, HD});
    a.mlp_scratch.dact = arena.take(dtype, {N, F});
    // GELU's backward may work in place; SwiGLU's needs the wider [N, 2F].
    a.mlp_scratch.dpre = c.family == Family::Gpt2 ? a.mlp_scratch.dact
                                                  : arena.take(dtype, {N, F_pre});
    return arena.bytes();
}

}  // namespace tandem::model

// Llama, Qwen2 and Qwen3 (dense): the tensor names of Hugging Face LlamaForCausalLM /
// Qwen2ForCausalLM / Qwen3ForCausalLM, nn.Linear weights stored [out, in], RMSNorm, SwiGLU,
// RoPE, optional q/k/v biases (Qwen2) and per-head q/k RMSNorm (Qwen3). q/k/v (weights, and
// biases) and gate/up are laid out adjacent so that each group is one product. Init: N(0, 0.02),
// o_proj and down_proj N(0, 0.02/sqrt(2L)), biases 0, norm weights 1.
#include <cmath>
#include <string>

#include "model/families.h"

namespace tandem::model {

namespace {
constexpr float kInitStd = 0.02f;
std::string layer_name(int64_t i, const char* suffix) {
    return "model.layers." + std::to_string(i) + "." + suffix;
}

}  // namespace

ParamLayout llama_layout(const ModelConfig& c) {
    const int64_t C = c.d_model, F = c.d_ffn, V = c.vocab_size, D = c.head_dim;
    const int64_t HD = c.n_heads * D, KD = c.n_heads_kv * D;
    const float residual_std = kInitStd / std::sqrt(2.0f * static_cast<float>(c.n_layers));
    using R = ParamRole;
    using I = ParamInit;
    ParamLayout p;
    p.add("model.embed_tokens.weight", {V, C}, R::Embedding, I::Normal, kInitStd);
    for (int64_t i = 0; i < c.n_layers; ++i) {
        auto n = [&](const char* suffix) { return layer_name(i, suffix); };
        p.add(n("input_layernorm.weight"),          {C},      R::Norm,   I::Ones);
        p.add(n("self_attn.q_proj.weight"),         {HD, C},  R::Matrix, I::Normal, kInitStd);
        p.add(n("self_attn.k_proj.weight"),         {KD, C},  R::Matrix, I::Normal, kInitStd);
        p.add(n("self_attn.v_proj.weight"),         {KD, C},  R::Matrix, I::Normal, kInitStd);
        if (c.qkv_bias) {
            p.add(n("self_attn.q_proj.bias"),       {HD},     R::Bias,   I::Zeros);
            p.add(n("self_attn.k_proj.bias"),       {KD},     R::Bias,   I::Zeros);
            p.add(n("self_attn.v_proj.bias"),       {KD},     R::Bias,   I::Zeros);
        }
        if (c.qk_norm) {
            p.add(n("self_attn.q_norm.weight"),     {D},      R::Norm,   I::Ones);
            p.add(n("self_attn.k_norm.weight"),     {D},      R::Norm,   I::Ones);
        }
        p.add(n("self_attn.o_proj.weight"),         {C, HD},  R::Matrix, I::Normal, residual_std);
        p.add(n("post_attention_layernorm.weight"), {C},      R::Norm,   I::Ones);
        p.add(n("mlp.gate_proj.weight"),            {F, C},   R::Matrix, I::Normal, kInitStd);
        p.add(n("mlp.up_proj.weight"),              {F, C},   R::Matrix, I::Normal, kInitStd);
        p.add(n("mlp.down_proj.weight"),            {C, F},   R::Matrix, I::Normal, residual_std);
    }
    p.add("model.norm.weight", {C}, R::Norm, I::Ones);
    if (!c.tie_embeddings) p.add("lm_head.weight", {V, C}, R::Matrix, I::Normal, kInitStd);
    return p;
}

ModelWeights llama_weights(const ModelConfig& c, const PlacedLayout& placed) {
    auto t = [&](const std::string& name) { return placed.view(name); };
    ModelWeights w;
    w.embed = {t("model.embed_tokens.weight"), {}};
    for (int64_t i = 0; i < c.n_layers; ++i) {
        auto n = [&](const char* suffix) { return layer_name(i, suffix); };
        BlockWeights b;
        b.attn_norm = {NormKind::RmsNorm, t(n("input_layernorm.weight")), {}, c.norm_eps};
        b.attn.qkv.weight = placed.stacked_view(
            {n("self_attn.q_proj.weight"), n("self_attn.k_proj.weight"),
                   n("self_attn.v_proj.weight")});
        if (c.qkv_bias)  // one [(H + 2 Hkv) D] vector: the QKV product's bias
            b.attn.qkv.bias = placed.stacked_view({n("self_attn.q_proj.bias"),
                                                   n("self_attn.k_proj.bias"),
                                                   n("self_attn.v_proj.bias")});
        if (c.qk_norm) {
            b.attn.q_norm = t(n("self_attn.q_norm.weight"));
            b.attn.k_norm = t(n("self_attn.k_norm.weight"));
        }
        b.attn.out.weight = t(n("self_attn.o_proj.weight"));
        b.mlp_norm = {NormKind::RmsNorm, t(n("post_attention_layernorm.weight")), {}, c.norm_eps};
        b.mlp.kind = MlpKind::SwiGlu;
        b.mlp.in.weight =
            placed.stacked_view({n("mlp.gate_proj.weight"), n("mlp.up_proj.weight")});
        b.mlp.out.weight = t(n("mlp.down_proj.weight"));
        w.blocks.push_back(b);
    }
    w.final_norm = {NormKind::RmsNorm, t("model.norm.weight"), {}, c.norm_eps};
    w.lm_head = c.tie_embeddings ? w.embed.wte : t("lm_head.weight");
    return w;
}

}  // namespace tandem::model

// GPT-2: the tensor names of the published gpt2 model.safetensors (no "transformer." prefix),
// Conv1D weights stored [in, out], LayerNorm with biases, GELU MLP, learned positions, and
// GPT-2's init: N(0, 0.02), residual projections (attn.c_proj, mlp.c_proj) N(0, 0.02/sqrt(2L)),
// biases 0, norm weights 1.
#include <cmath>
#include <string>

#include "model/families.h"

namespace tandem::model {

namespace {
constexpr float kInitStd = 0.02f;
std::string block_name(int64_t i, const char* suffix) {
    return "h." + std::to_string(i) + "." + suffix;
}
}  // namespace

ParamLayout gpt2_layout(const ModelConfig& c) {
    const int64_t C = c.d_model, F = c.d_ffn, V = c.vocab_size;
    const float residual_std = kInitStd / std::sqrt(2.0f * static_cast<float>(c.n_layers));
    using R = ParamRole;
    using I = ParamInit;
    ParamLayout p;
    p.add("wte.weight", {V, C}, R::Embedding, I::Normal, kInitStd);
    p.add("wpe.weight", {c.max_seq_len, C}, R::Embedding, I::Normal, kInitStd);
    for (int64_t i = 0; i < c.n_layers; ++i) {
        auto n = [&](const char* suffix) { return block_name(i, suffix); };
        p.add(n("ln_1.weight"),        {C},        R::Norm,   I::Ones);
        p.add(n("ln_1.bias"),          {C},        R::Bias,   I::Zeros);
        p.add(n("attn.c_attn.weight"), {C, 3 * C}, R::Matrix, I::Normal, kInitStd);
        p.add(n("attn.c_attn.bias"),   {3 * C},    R::Bias,   I::Zeros);
        p.add(n("attn.c_proj.weight"), {C, C},     R::Matrix, I::Normal, residual_std);
        p.add(n("attn.c_proj.bias"),   {C},        R::Bias,   I::Zeros);
        p.add(n("ln_2.weight"),        {C},        R::Norm,   I::Ones);
        p.add(n("ln_2.bias"),          {C},        R::Bias,   I::Zeros);
        p.add(n("mlp.c_fc.weight"),    {C, F},     R::Matrix, I::Normal, kInitStd);
        p.add(n("mlp.c_fc.bias"),      {F},        R::Bias,   I::Zeros);
        p.add(n("mlp.c_proj.weight"),  {F, C},     R::Matrix, I::Normal, residual_std);
        p.add(n("mlp.c_proj.bias"),    {C},        R::Bias,   I::Zeros);
    }
    p.add("ln_f.weight", {C}, R::Norm, I::Ones);
    p.add("ln_f.bias",   {C}, R::Bias, I::Zeros);
    if (!c.tie_embeddings) p.add("lm_head.weight", {V, C}, R::Matrix, I::Normal, kInitStd);
    return p;
}

ModelWeights gpt2_weights(const ModelConfig& c, const PlacedLayout& placed) {
    auto t = [&](const std::string& name) { return placed.view(name); };
    ModelWeights w;
    w.embed = {t("wte.weight"), t("wpe.weight")};
    for (int64_t i = 0; i < c.n_layers; ++i) {
        auto n = [&](const char* suffix) { return block_name(i, suffix); };
        BlockWeights b;
        b.attn_norm = {NormKind::LayerNorm, t(n("ln_1.weight")), t(n("ln_1.bias")), c.norm_eps};
        b.attn.qkv = {t(n("attn.c_attn.weight")), t(n("attn.c_attn.bias")), /*is_in_out=*/true};
        b.attn.out = {t(n("attn.c_proj.weight")), t(n("attn.c_proj.bias")), true};
        b.mlp_norm = {NormKind::LayerNorm, t(n("ln_2.weight")), t(n("ln_2.bias")), c.norm_eps};
        b.mlp.kind = MlpKind::Gelu;
        b.mlp.in = {t(n("mlp.c_fc.weight")), t(n("mlp.c_fc.bias")), true};
        b.mlp.out = {t(n("mlp.c_proj.weight")), t(n("mlp.c_proj.bias")), true};
        w.blocks.push_back(b);
    }
    w.final_norm = {NormKind::LayerNorm, t("ln_f.weight"), t("ln_f.bias"), c.norm_eps};
    w.lm_head = c.tie_embeddings ? w.embed.wte : t("lm_head.weight");
    return w;
}

}  // namespace tandem::model

// The parameter table: Hugging Face names and shapes, adjacency of fused products, sizes.
#include "model/param_layout.h"

#include <gtest/gtest.h>

#include <string>

namespace tandem::model {
namespace {

TEST(ParamLayout, Gpt2_124mHasThePublishedNamesShapesAndSize) {
    const ParamLayout p = make_layout(preset_config("gpt2-124m"));
    EXPECT_EQ(p.n_params(), 124439808);  // GPT-2 small, tied
    EXPECT_EQ(p.get("wte.weight").shape, (Shape{50257, 768}));
    EXPECT_EQ(p.get("wpe.weight").shape, (Shape{1024, 768}));
    EXPECT_EQ(p.get("h.0.attn.c_attn.weight").shape, (Shape{768, 2304}));
    EXPECT_EQ(p.get("h.11.mlp.c_fc.weight").shape, (Shape{768, 3072}));
    EXPECT_EQ(p.get("h.11.mlp.c_proj.weight").shape, (Shape{3072, 768}));
    EXPECT_EQ(p.get("ln_f.bias").shape, (Shape{768}));
    EXPECT_EQ(p.find("lm_head.weight"), nullptr);  // tied
    EXPECT_EQ(p.entries().size(), 2 + 12 * 12 + 2u);
}

TEST(ParamLayout, Llama15mHasItsSizeAndTiedHead) {
    const ParamLayout p = make_layout(preset_config("llama-15m"));
    EXPECT_EQ(p.n_params(), 15191712);  // llama2.c stories15M
    EXPECT_EQ(p.get("model.layers.5.mlp.down_proj.weight").shape, (Shape{288, 768}));
    EXPECT_EQ(p.find("lm_head.weight"), nullptr);
}

TEST(ParamLayout, Qwen2HasQkvBiasesAdjacentAndQwen25_05bSize) {
    // Qwen2.5-0.5B: 24 layers, hidden 896, 14 heads of 64, 2 kv heads, ffn 4864, tied.
    ModelConfig c{.family = Family::Llama, .n_layers = 24, .n_heads = 14, .n_heads_kv = 2,
                  .d_model = 896, .head_dim = 64, .d_ffn = 4864, .vocab_size = 151936,
                  .max_seq_len = 32768, .rope_theta = 1e6f, .norm_eps = 1e-6f,
                  .tie_embeddings = true, .qkv_bias = true};
    c.validate();
    const ParamLayout p = make_layout(c);
    EXPECT_EQ(p.n_params(), 494032768);
    const auto& q = p.get("model.layers.3.self_attn.q_proj.bias");
    const auto& k = p.get("model.layers.3.self_attn.k_proj.bias");
    const auto& v = p.get("model.layers.3.self_attn.v_proj.bias");
    EXPECT_EQ(q.shape, (Shape{896}));
    EXPECT_EQ(k.shape, (Shape{128}));
    EXPECT_EQ(k.offset, q.offset + q.numel());
    EXPECT_EQ(v.offset, k.offset + k.numel());
    EXPECT_EQ(q.role, ParamRole::Bias);
    EXPECT_FALSE(q.is_decayed());
    EXPECT_EQ(p.find("model.layers.3.self_attn.o_proj.bias"), nullptr);
}

TEST(ParamLayout, OffsetsArePackedInOrder) {
    for (const char* name : {"tiny", "qwen3-tiny", "gpt2-124m"}) {
        const ParamLayout p = make_layout(preset_config(name));
        int64_t offset = 0;
        for (const auto& e : p.entries()) {
            EXPECT_EQ(e.offset, offset) << e.name;
            offset += e.numel();
        }
        EXPECT_EQ(offset, p.n_params());
    }
}

TEST(ParamLayout, QkvAndGateUpAreAdjacentSoOneProductReadsThem) {
    ModelConfig c = preset_config("qwen3-tiny");
    c.tie_embeddings = false;
    const ParamLayout p = make_layout(c);
    const int64_t C = c.d_model, D = c.head_dim;
    for (int64_t i = 0; i < c.n_layers; ++i) {
        const std::string pre = "model.layers." + std::to_string(i) + ".";
        const auto& q = p.get(pre + "self_attn.q_proj.weight");
        const auto& k = p.get(pre + "self_attn.k_proj.weight");
        const auto& v = p.get(pre + "self_attn.v_proj.weight");
        EXPECT_EQ(q.shape, (Shape{c.n_heads * D, C}));
        EXPECT_EQ(k.shape, (Shape{c.n_heads_kv * D, C}));
        EXPECT_EQ(k.offset, q.offset + q.numel());
        EXPECT_EQ(v.offset, k.offset + k.numel());
        const auto& gate = p.get(pre + "mlp.gate_proj.weight");
        const auto& up = p.get(pre + "mlp.up_proj.weight");
        EXPECT_EQ(up.offset, gate.offset + gate.numel());
        EXPECT_EQ(p.get(pre + "self_attn.q_norm.weight").shape, (Shape{D}));
        EXPECT_EQ(p.get(pre + "self_attn.o_proj.weight").shape, (Shape{C, c.n_heads * D}));
    }
    EXPECT_EQ(p.get("lm_head.weight").shape, (Shape{c.vocab_size, C}));
    // The stacked view is what the QKV product reads.
    std::vector<float> flat(p.n_params());
    Tensor t(flat.data(), DType::F32, {p.n_params()});
    const Tensor qkv = p.stacked_view(t, {"model.layers.1.self_attn.q_proj.weight",
                                          "model.layers.1.self_attn.k_proj.weight",
                                          "model.layers.1.self_attn.v_proj.weight"});
    EXPECT_EQ(qkv.shape, (Shape{c.qkv_dim(), C}));
    EXPECT_EQ(qkv.data, p.view(t, "model.layers.1.self_attn.q_proj.weight").data);
}

TEST(ParamLayout, RolesDecideWeightDecay) {
    const ParamLayout p = make_layout(preset_config("gpt2-124m"));
    EXPECT_TRUE(p.get("h.0.attn.c_attn.weight").is_decayed());
    EXPECT_FALSE(p.get("h.0.attn.c_attn.bias").is_decayed());
    EXPECT_FALSE(p.get("h.0.ln_1.weight").is_decayed());
    EXPECT_FALSE(p.get("wte.weight").is_decayed());
    const ParamLayout q = make_layout(preset_config("qwen3-tiny"));
    EXPECT_FALSE(q.get("model.layers.0.self_attn.k_norm.weight").is_decayed());
    EXPECT_TRUE(q.get("model.layers.0.mlp.up_proj.weight").is_decayed());
}

TEST(ParamLayout, UnknownNameIsAnErrorNamingIt) {
    const ParamLayout p = make_layout(preset_config("tiny"));
    try {
        p.get("transformer.wte.weight");
        FAIL();
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("transformer.wte.weight"), std::string::npos);
    }
}

}  // namespace
}  // namespace tandem::model

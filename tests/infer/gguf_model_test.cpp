#include "infer/gguf_model.h"

#include <gtest/gtest.h>

#include <numeric>

#include "common/error_message.h"
#include "core/error.h"
#include "core/quant.h"
#include "model/param_layout.h"

namespace tandem::infer {

// The model layer's names, used throughout the mapping.
using namespace tandem::model;
namespace {

using io::GgufMetadata;
using io::GgufTensor;
using io::GgufType;

std::vector<int64_t> dims(const Shape& s) {
    return {s.dims.begin(), s.dims.begin() + s.ndim};
}

// The GGUF tensor infos (no data) a model of config `c` exports to.
std::vector<GgufTensor> gguf_infos(const ModelConfig& c, const std::string& arch, bool bias) {
    std::vector<GgufTensor> out;
    const ParamLayout layout = make_layout(c);
    for (const ParamEntry& e : layout.entries()) {
        const GgufTensorMapping m = gguf_tensor_for_hf(e.name, c, arch);
        std::vector<int64_t> shape = dims(e.shape);
        if (m.transform == GgufTransform::Transpose) std::swap(shape[0], shape[1]);
        out.push_back({m.gguf_name, DType::F32, shape});
    }
    if (bias)  // Qwen2's biases, which tandem's layout on this branch does not list yet
        for (int64_t l = 0; l < c.n_layers; ++l)
            for (const char* p : {"q", "k", "v"})
                out.push_back({"blk." + std::to_string(l) + ".attn_" + p + ".bias",
                               DType::F32,
                               {(p[0] == 'q' ? c.n_heads : c.n_heads_kv) * c.head_dim}});
    return out;
}

using testing::error_message;

void expect_same(const ModelConfig& a, const ModelConfig& b) {
    EXPECT_EQ(a.family, b.family);
    EXPECT_EQ(a.n_layers, b.n_layers);
    EXPECT_EQ(a.n_heads, b.n_heads);
    EXPECT_EQ(a.n_heads_kv, b.n_heads_kv);
    EXPECT_EQ(a.d_model, b.d_model);
    EXPECT_EQ(a.head_dim, b.head_dim);
    EXPECT_EQ(a.d_ffn, b.d_ffn);
    EXPECT_EQ(a.vocab_size, b.vocab_size);
    EXPECT_EQ(a.max_seq_len, b.max_seq_len);
    EXPECT_EQ(a.norm_eps, b.norm_eps);
    EXPECT_EQ(a.tie_embeddings, b.tie_embeddings);
    EXPECT_EQ(a.qk_norm, b.qk_norm);
    if (a.family == Family::Llama) EXPECT_EQ(a.rope_theta, b.rope_theta);
}

struct Case {
    const char* preset;
    bool tie, bias;
    const char* arch;
};

TEST(GgufModel, ConfigRoundTripsForEveryArchitecture) {
    for (const Case& k :
         {Case{"llama-15m", false, false, "llama"}, Case{"tiny", true, false, "llama"},
          Case{"qwen3-tiny", true, false, "qwen3"}, Case{"tiny", false, true, "qwen2"},
          Case{"gpt2-124m", true, false, "gpt2"}, Case{"gpt2-124m", false, false, "gpt2"}}) {
        SCOPED_TRACE(std::string(k.preset) + " as " + k.arch);
        ModelConfig c = preset_config(k.preset);
        c.tie_embeddings = k.tie;
        c.rope_theta = 500000.0f;
        c.norm_eps = 1e-6f;
        EXPECT_EQ(gguf_architecture(c, k.bias), k.arch);
        GgufMetadata md("m.gguf");
        add_config_to_gguf(md, c, k.bias);
        const GgufModelConfig back = config_from_gguf(md, gguf_infos(c, k.arch, k.bias));
        EXPECT_EQ(back.architecture, k.arch);
        EXPECT_EQ(back.has_qkv_bias, k.bias);
        expect_same(back.config, c);
    }
}

TEST(GgufModel, WritesLlamaCppKeyNamesAndTypes) {
    ModelConfig c = preset_config("qwen3-tiny");
    GgufMetadata md;
    add_config_to_gguf(md, c, false);
    EXPECT_EQ(md.get_string("general.architecture"), "qwen3");
    for (const char* k : {"qwen3.block_count", "qwen3.context_length", "qwen3.embedding_length",
                          "qwen3.feed_forward_length", "qwen3.attention.head_count",
                          "qwen3.attention.head_count_kv", "qwen3.attention.key_length",
                          "qwen3.attention.value_length", "qwen3.rope.dimension_count"})
        EXPECT_TRUE(std::holds_alternative<uint32_t>(md.get(k))) << k;
    EXPECT_TRUE(std::holds_alternative<float>(md.get("qwen3.rope.freq_base")));
    EXPECT_TRUE(std::holds_alternative<float>(md.get("qwen3.attention.layer_norm_rms_epsilon")));
    EXPECT_EQ(md.get_int("qwen3.attention.key_length"), c.head_dim);

    GgufMetadata g;
    add_config_to_gguf(g, preset_config("gpt2-124m"), false);
    EXPECT_EQ(g.get_int("gpt2.context_length"), 1024);
    EXPECT_EQ(g.get_int("gpt2.feed_forward_length"), 3072);
    EXPECT_TRUE(std::holds_alternative<float>(g.get("gpt2.attention.layer_norm_epsilon")));
    EXPECT_FALSE(g.contains("gpt2.rope.freq_base"));
}

TEST(GgufModel, ReadsLlamaCppDefaultsForOptionalKeys) {
    GgufMetadata md("d.gguf");
    md.set("general.architecture", std::string("llama"));
    md.set("llama.block_count", uint32_t{2});
    md.set("llama.context_length", uint32_t{64});
    md.set("llama.embedding_length", uint32_t{32});
    md.set("llama.feed_forward_length", uint32_t{96});
    md.set("llama.attention.head_count", uint32_t{4});
    md.set("llama.attention.layer_norm_rms_epsilon", 1e-5f);
    md.set("tokenizer.ggml.tokens", io::GgufArray::of_strings(std::vector<std::string>(10, "x")));
    ModelConfig want = preset_config("tiny");
    want.n_layers = 2, want.max_seq_len = 64, want.d_model = 32, want.d_ffn = 96;
    want.n_heads = want.n_heads_kv = 4, want.head_dim = 8, want.vocab_size = 10;
    want.tie_embeddings = true;
    const ModelConfig c = config_from_gguf(md, gguf_infos(want, "llama", false)).config;
    EXPECT_EQ(c.n_heads_kv, 4);
    EXPECT_EQ(c.head_dim, 8);
    EXPECT_EQ(c.rope_theta, 10000.0f);
    EXPECT_EQ(c.vocab_size, 10);
    EXPECT_TRUE(c.tie_embeddings);
}

TEST(GgufModel, RefusesWhatTandemDoesNotImplementByName) {
    const ModelConfig c = preset_config("tiny");
    auto try_with = [&](auto edit, std::vector<GgufTensor> extra = {}) {
        GgufMetadata md("x.gguf");
        add_config_to_gguf(md, c, false);
        std::vector<GgufTensor> t = gguf_infos(c, "llama", false);
        edit(md);
        t.insert(t.end(), extra.begin(), extra.end());
        return error_message([&] { config_from_gguf(md, t); });
    };
    EXPECT_EQ(
        try_with([](GgufMetadata& m) { m.set("general.architecture", std::string("mamba")); }),
        "x.gguf: general.architecture is 'mamba', which tandem does not read (it reads "
        "llama, qwen2, qwen3, gpt2)");
    EXPECT_NE(try_with([](GgufMetadata& m) {
                  m.set("llama.rope.scaling.type", std::string("yarn"));
              }).find("x.gguf: llama.rope.scaling.type is 'yarn': RoPE scaling"),
              std::string::npos);
    EXPECT_NE(try_with([](GgufMetadata& m) {
                  m.set("llama.attention.value_length", uint32_t{7});
              }).find("llama.attention.value_length is 7"),
              std::string::npos);
    EXPECT_NE(try_with([](GgufMetadata& m) {
                  m.set("llama.rope.dimension_count", uint32_t{4});
              }).find("llama.rope.dimension_count is 4"),
              std::string::npos);
    EXPECT_NE(try_with([](GgufMetadata& m) {
                  m.set("llama.expert_count", uint32_t{8});
              }).find("llama.expert_count is set"),
              std::string::npos);
    EXPECT_NE(try_with([](GgufMetadata& m) {
                  m.set("llama.block_count", std::string("2"));
              }).find("'llama.block_count' is of type string but an integer was expected"),
              std::string::npos);
    EXPECT_NE(try_with([](GgufMetadata&) {}, {{"rope_freqs.weight", DType::F32, {4}}})
                  .find("x.gguf: tensor 'rope_freqs.weight' has no Hugging Face counterpart"),
              std::string::npos);
    EXPECT_NE(try_with([](GgufMetadata&) {}, {{"blk.0.attn_q_norm.weight", DType::F32, {4}}})
                  .find("x.gguf: tensor 'blk.0.attn_q_norm.weight' (model.layers.0.self_attn.q_norm"
                        ".weight) has no place in tandem's llama layout for this configuration"),
              std::string::npos);
    EXPECT_NE(try_with([&](GgufMetadata& m) {
                  m.set("llama.feed_forward_length", uint32_t(c.d_ffn + 1));
              })
                  .find("x.gguf: tensor 'blk.0.ffn_gate.weight' is [" + std::to_string(c.d_ffn) +
                        ", " + std::to_string(c.d_model) + "] but the metadata implies [" +
                        std::to_string(c.d_ffn + 1)),
              std::string::npos);
    {
        GgufMetadata md("x.gguf");
        add_config_to_gguf(md, c, false);
        std::vector<GgufTensor> t = gguf_infos(c, "llama", false);
        t.erase(t.begin() + 3);
        EXPECT_NE(error_message([&] { config_from_gguf(md, t); })
                      .find("x.gguf: has no tensor 'blk.0.attn_k.weight', which tandem's llama "
                            "layout needs"),
                  std::string::npos);
    }
    // Sizes a hostile file could claim, refused before any layout is built from them.
    EXPECT_NE(try_with([](GgufMetadata& m) {
                  m.set("llama.block_count", uint32_t{4000000000u});
              }).find("x.gguf: llama.block_count is 4000000000 but the file holds only"),
              std::string::npos);
    EXPECT_NE(try_with([](GgufMetadata& m) {
                  m.set("llama.feed_forward_length", uint32_t{4000000000u});
              }).find("feed_forward_length x embedding_length (4000000000 x "),
              std::string::npos);
    EXPECT_NE(try_with([](GgufMetadata&) {}, {{"blk.9.attn_q.weight", DType::F32, {4}}})
                  .find("tensor 'blk.9.attn_q.weight' is in layer 9 but the model has"),
              std::string::npos);
    const std::string wide = try_with(
        [&](GgufMetadata& m) { m.set("llama.embedding_length", uint32_t(2 * c.d_model)); });
    EXPECT_NE(wide.find("tensor 'token_embd.weight' is [" + std::to_string(c.vocab_size) + ", " +
                        std::to_string(c.d_model) + "] but the metadata implies"),
              std::string::npos)
        << wide;
}

TEST(GgufModel, EveryLayoutTensorMapsToLlamaCppNamesAndBack) {
    struct Want {
        const char* preset;
        const char* arch;
        const char* hf;
        const char* gguf;
        GgufTransform transform;
    };
    const Want wants[] = {
        {"llama-15m", "llama", "model.embed_tokens.weight", "token_embd.weight",
         GgufTransform::None},
        {"llama-15m", "llama", "model.layers.1.self_attn.q_proj.weight", "blk.1.attn_q.weight",
         GgufTransform::RopePermute},
        {"llama-15m", "llama", "model.layers.0.self_attn.k_proj.weight", "blk.0.attn_k.weight",
         GgufTransform::RopePermute},
        {"llama-15m", "llama", "model.layers.0.self_attn.o_proj.weight", "blk.0.attn_output.weight",
         GgufTransform::None},
        {"llama-15m", "llama", "model.layers.0.post_attention_layernorm.weight",
         "blk.0.ffn_norm.weight", GgufTransform::None},
        {"llama-15m", "llama", "model.layers.0.mlp.gate_proj.weight", "blk.0.ffn_gate.weight",
         GgufTransform::None},
        {"llama-15m", "llama", "model.norm.weight", "output_norm.weight", GgufTransform::None},
        {"llama-15m", "llama", "lm_head.weight", "output.weight", GgufTransform::None},
        {"qwen3-tiny", "qwen3", "model.layers.0.self_attn.q_proj.weight", "blk.0.attn_q.weight",
         GgufTransform::None},
        {"qwen3-tiny", "qwen3", "model.layers.0.self_attn.k_norm.weight",
         "blk.0.attn_k_norm.weight", GgufTransform::None},
        {"tiny", "qwen2", "model.layers.0.self_attn.v_proj.bias", "blk.0.attn_v.bias",
         GgufTransform::None},
        {"gpt2-124m", "gpt2", "wpe.weight", "position_embd.weight", GgufTransform::None},
        {"gpt2-124m", "gpt2", "h.11.attn.c_attn.weight", "blk.11.attn_qkv.weight",
         GgufTransform::Transpose},
        {"gpt2-124m", "gpt2", "h.0.attn.c_attn.bias", "blk.0.attn_qkv.bias", GgufTransform::None},
        {"gpt2-124m", "gpt2", "h.0.mlp.c_fc.weight", "blk.0.ffn_up.weight",
         GgufTransform::Transpose},
        {"gpt2-124m", "gpt2", "h.0.mlp.c_proj.weight", "blk.0.ffn_down.weight",
         GgufTransform::Transpose},
        {"gpt2-124m", "gpt2", "h.0.ln_2.bias", "blk.0.ffn_norm.bias", GgufTransform::None},
        {"gpt2-124m", "gpt2", "ln_f.bias", "output_norm.bias", GgufTransform::None},
    };
    for (const Want& w : wants) {
        const ModelConfig c = preset_config(w.preset);
        const GgufTensorMapping to = gguf_tensor_for_hf(w.hf, c, w.arch);
        EXPECT_EQ(to.gguf_name, w.gguf) << w.hf;
        EXPECT_EQ(to.transform, w.transform) << w.hf;
        const GgufTensorMapping back = hf_tensor_for_gguf(w.gguf, c, w.arch);
        EXPECT_EQ(back.hf_name, w.hf);
        EXPECT_EQ(back.transform, w.transform);
    }
    const ModelConfig llama = preset_config("llama-15m");
    EXPECT_EQ(gguf_tensor_for_hf("model.layers.0.self_attn.q_proj.weight", llama, "llama").n_heads,
              llama.n_heads);
    EXPECT_EQ(gguf_tensor_for_hf("model.layers.0.self_attn.k_proj.weight", llama, "llama").n_heads,
              llama.n_heads_kv);
    // Every tensor of every layout maps there and back to itself.
    for (const char* preset : {"tiny", "llama-15m", "gpt2-124m", "qwen3-tiny"}) {
        ModelConfig c = preset_config(preset);
        c.tie_embeddings = false;
        const std::string arch = gguf_architecture(c, false);
        const ParamLayout layout = make_layout(c);
        for (const ParamEntry& e : layout.entries()) {
            const GgufTensorMapping m = gguf_tensor_for_hf(e.name, c, arch);
            EXPECT_EQ(hf_tensor_for_gguf(m.gguf_name, c, arch).hf_name, e.name);
        }
    }
    EXPECT_NE(error_message([&] {
                  gguf_tensor_for_hf("model.layers.0.self_attn.o_proj.bias", llama, "llama");
              })
                  .find("tensor 'model.layers.0.self_attn.o_proj.bias' has no GGUF counterpart in "
                        "tandem's llama layout"),
              std::string::npos);
    EXPECT_THROW(gguf_tensor_for_hf("h.0.attn.c_attn.weight", llama, "llama"), Error);
    EXPECT_THROW(gguf_tensor_for_hf("model.layers.x.mlp.up_proj.weight", llama, "llama"), Error);
}

// The converter's permute: rows of a head viewed as [2, D/2], transposed to [D/2, 2]. For one
// head of D = 4 that takes HF rows (0, 1, 2, 3) to GGUF rows (0, 2, 1, 3).
TEST(GgufModel, LlamaRopePermutationMatchesTheConverter) {
    const float hf[4 * 2] = {0, 0.5f, 1, 1.5f, 2, 2.5f, 3, 3.5f};  // [4 rows, 2 cols]
    float gguf[8];
    GgufTensorMapping m{"q", "attn_q", GgufTransform::RopePermute, 1};
    EXPECT_EQ(hf_to_gguf_values(m, gguf, hf, {4, 2}), (std::vector<int64_t>{4, 2}));
    const float want[8] = {0, 0.5f, 2, 2.5f, 1, 1.5f, 3, 3.5f};
    for (int i = 0; i < 8; ++i) EXPECT_EQ(gguf[i], want[i]) << i;

    // Two heads of D = 8: head h's row i of its first half goes to 2i, of its second to 2i + 1.
    std::vector<float> src(16 * 3), perm(16 * 3), back(16 * 3);
    std::iota(src.begin(), src.end(), 0.0f);
    m.n_heads = 2;
    hf_to_gguf_values(m, perm.data(), src.data(), {16, 3});
    for (int h = 0; h < 2; ++h)
        for (int j = 0; j < 2; ++j)
            for (int i = 0; i < 4; ++i)
                EXPECT_EQ(perm[(h * 8 + 2 * i + j) * 3], src[(h * 8 + j * 4 + i) * 3]);
    gguf_to_hf_values(m, back.data(), perm.data(), {16, 3});
    EXPECT_EQ(back, src);
    // A bias is a column of rows.
    std::vector<float> bias(16), bias_perm(16), bias_back(16);
    std::iota(bias.begin(), bias.end(), 0.0f);
    hf_to_gguf_values(m, bias_perm.data(), bias.data(), {16});
    EXPECT_EQ(bias_perm[1], 4.0f);
    gguf_to_hf_values(m, bias_back.data(), bias_perm.data(), {16});
    EXPECT_EQ(bias_back, bias);
}

TEST(GgufModel, RopeRowsMoveQuantizedRowsWhole) {
    // Rows of 34 bytes (one Q8_0 block) move as units, and the inverse restores them.
    std::vector<unsigned char> src(8 * 34), perm(8 * 34), back(8 * 34);
    for (size_t i = 0; i < src.size(); ++i) src[i] = static_cast<unsigned char>(i * 7);
    rope_rows_to_gguf(perm.data(), src.data(), 2, 8, 34);
    EXPECT_EQ(std::memcmp(perm.data() + 1 * 34, src.data() + 2 * 34, 34), 0);  // head 0: 2 -> 1
    EXPECT_EQ(std::memcmp(perm.data() + 5 * 34, src.data() + 6 * 34, 34), 0);  // head 1: 6 -> 5
    rope_rows_from_gguf(back.data(), perm.data(), 2, 8, 34);
    EXPECT_EQ(back, src);
}

TEST(GgufModel, Gpt2ConvWeightsAreTransposedBothWays) {
    const float hf[2 * 3] = {1, 2, 3, 4, 5, 6};  // Conv1D [in 2, out 3]
    float gguf[6], back[6];
    GgufTensorMapping m{"h.0.mlp.c_fc.weight", "blk.0.ffn_up.weight", GgufTransform::Transpose, 0};
    EXPECT_EQ(hf_to_gguf_values(m, gguf, hf, {2, 3}), (std::vector<int64_t>{3, 2}));
    const float want[6] = {1, 4, 2, 5, 3, 6};  // [out 3, in 2]
    for (int i = 0; i < 6; ++i) EXPECT_EQ(gguf[i], want[i]);
    EXPECT_EQ(gguf_to_hf_values(m, back, gguf, {3, 2}), (std::vector<int64_t>{2, 3}));
    for (int i = 0; i < 6; ++i) EXPECT_EQ(back[i], hf[i]);
}

TEST(GgufModel, TensorsConvertBetweenHfValuesAndGgufDtypes) {
    const ModelConfig c = preset_config("llama-15m");
    const GgufTensorMapping q =
        gguf_tensor_for_hf("model.layers.0.self_attn.q_proj.weight", c, "llama");
    const int64_t rows = c.n_heads * c.head_dim, cols = c.d_model;
    std::vector<float> hf(size_t(rows * cols));
    for (size_t i = 0; i < hf.size(); ++i) hf[i] = float(int(i % 17) - 8) / 8.0f;
    for (DType dtype : {DType::F32, DType::F16, DType::BF16, DType::Q8_0, DType::Q4_0}) {
        SCOPED_TRACE(std::string(dtype_name(dtype)));
        const OwnedGgufTensor t = gguf_tensor_from_hf(q, hf, {rows, cols}, dtype);
        EXPECT_EQ(t.info.name, "blk.0.attn_q.weight");
        EXPECT_EQ(t.info.shape, (std::vector<int64_t>{rows, cols}));
        EXPECT_EQ(t.info.bytes, dtype_bytes(dtype, rows * cols));
        std::vector<int64_t> shape;
        const std::vector<float> back = hf_values_from_gguf(t.info, q, shape);
        EXPECT_EQ(shape, (std::vector<int64_t>{rows, cols}));
        // The permutation moves whole rows, and blocks lie along rows: the values come back as
        // the same dtype round trip of the HF values gives, bit for bit.
        std::vector<uint8_t> stored(dtype_bytes(dtype, rows * cols));
        std::vector<float> want(hf.size());
        convert_values(stored.data(), dtype, hf.data(), DType::F32, rows * cols);
        convert_values(want.data(), DType::F32, stored.data(), dtype, rows * cols);
        EXPECT_EQ(back, want);
    }
    const GgufTensorMapping fc =
        gguf_tensor_for_hf("h.0.mlp.c_fc.weight", preset_config("gpt2-124m"), "gpt2");
    std::vector<float> w(4 * 64, 0.5f);
    EXPECT_EQ(gguf_tensor_from_hf(fc, w, {4, 64}, DType::F16).info.shape,
              (std::vector<int64_t>{64, 4}));
    EXPECT_NE(error_message([&] {
                  gguf_tensor_from_hf(fc, w, {4, 64}, DType::Q8_0);
              }).find("tensor 'blk.0.ffn_up.weight' [64, 4] cannot be q8_0"),
              std::string::npos);
}

TEST(GgufModel, ArchitectureChoiceRefusesWhatLlamaCppCannotRun) {
    ModelConfig c = preset_config("qwen3-tiny");
    EXPECT_NE(
        error_message([&] { gguf_architecture(c, true); }).find("both qk_norm and q/k/v biases"),
        std::string::npos);
    c.qk_norm = false;  // H * D != C in qwen3-tiny
    EXPECT_NE(error_message([&] {
                  gguf_architecture(c, true);
              }).find("llama.cpp's qwen2 needs heads x head size"),
              std::string::npos);
    EXPECT_EQ(gguf_architecture(c, false), "llama");
}

}  // namespace
}  // namespace tandem::infer

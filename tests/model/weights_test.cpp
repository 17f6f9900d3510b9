#include "model/weights.h"

#include <gtest/gtest.h>

#include "backend/registry.h"
#include "common/test_util.h"
#include "core/error.h"
#include "core/quant.h"
#include "model/model.h"

namespace tandem::model {
namespace {

ModelConfig small_llama() {
    ModelConfig c = preset_config("qwen3-tiny");
    c.vocab_size = 96;
    c.max_seq_len = 16;
    return c;
}

TEST(Weights, EachTensorKeepsItsOwnDtypeAndTheQkvStaysOneMatrix) {
    backend::Backend& be = backend::get_backend("cpu");
    const ModelConfig c = small_llama();
    const Weights w(c, be, storage_dtype_rule(DType::Q8_0));
    EXPECT_FALSE(w.is_uniform());
    EXPECT_EQ(w.dtype_of("model.norm.weight"), DType::F32);
    EXPECT_EQ(w.dtype_of("model.layers.0.self_attn.q_norm.weight"), DType::F32);
    EXPECT_EQ(w.dtype_of("model.layers.0.mlp.down_proj.weight"), DType::Q8_0);
    const Tensor qkv = w.views().blocks[0].attn.qkv.weight;
    EXPECT_EQ(qkv.dtype, DType::Q8_0);
    EXPECT_EQ(qkv.shape, (Shape{c.qkv_dim(), c.d_model}));
    EXPECT_EQ(qkv.data, w.tensor("model.layers.0.self_attn.q_proj.weight").data);
    // The buffer holds exactly the tensors' bytes: Q8_0 is 34 bytes per 32 values.
    size_t bytes = 0;
    for (const ParamEntry& e : w.layout().entries()) bytes += dtype_bytes(w.dtype_of(e.name), e.numel());
    EXPECT_EQ(w.bytes(), bytes);
    EXPECT_LT(w.bytes(), Weights(c, be, DType::F32).bytes() / 3);
}

TEST(Weights, BlockDtypeFallsBackToF16ForRowsThatAreNotWholeBlocks) {
    ModelConfig c = small_llama();
    c.d_model = 48;  // not a multiple of 32
    c.n_heads = 3, c.n_heads_kv = 1, c.head_dim = 16;
    const Weights w(c, backend::get_backend("cpu"), storage_dtype_rule(DType::Q4_0));
    EXPECT_EQ(w.dtype_of("model.layers.0.mlp.up_proj.weight"), DType::F16);  // rows of 48
    EXPECT_EQ(w.dtype_of("model.layers.0.mlp.down_proj.weight"), DType::Q4_0);  // rows of d_ffn
}

TEST(Weights, SetAndGetConvertBetweenTheCallersAndTheStorageDtype) {
    backend::Backend& be = backend::get_backend("cpu");
    Weights w(small_llama(), be, storage_dtype_rule(DType::BF16));
    const std::string name = "model.layers.1.mlp.up_proj.weight";
    const int64_t n = w.tensor(name).numel();
    const std::vector<float> x = testing::random_normal(n, 4);
    w.set(name, x.data(), DType::F32, n);
    const std::vector<float> back = w.get_f32(name);
    for (int64_t i = 0; i < n; ++i) ASSERT_EQ(back[i], f32_from_bf16(bf16_from_f32(x[i])));
    try {
        w.set(name, x.data(), DType::F32, n - 1);
        FAIL();
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find(name), std::string::npos);
    }
}

TEST(Weights, ConvertedCopiesTensorsThatKeepTheirDtypeBitForBit) {
    backend::Backend& be = backend::get_backend("cpu");
    Weights w(small_llama(), be, DType::F32);
    w.init(3);
    const Weights q = w.converted(be, storage_dtype_rule(DType::Q4_0));
    const Weights again = q.converted(backend::get_backend("reference"), storage_dtype_rule(DType::Q4_0));
    const std::string name = "model.layers.0.self_attn.o_proj.weight";
    const Tensor a = q.tensor(name), b = again.tensor(name);
    ASSERT_EQ(a.bytes(), b.bytes());
    EXPECT_EQ(std::memcmp(a.data, b.data, a.bytes()), 0);
    // And Q4_0 of the values is what core's quantizer gives.
    const std::vector<float> x = w.get_f32(name);
    std::vector<char> want(dtype_bytes(DType::Q4_0, x.size()));
    quantize_q4_0(want.data(), x.data(), x.size());
    EXPECT_EQ(std::memcmp(a.data, want.data(), want.size()), 0);
}

TEST(Weights, InitGivesTheSameValuesInEveryDtypeAndOnEveryBackend) {
    Weights a(small_llama(), backend::get_backend("reference"), DType::F64);
    Weights b(small_llama(), backend::get_backend("cpu"), DType::F32);
    a.init(11);
    b.init(11);
    for (const ParamEntry& e : a.layout().entries()) ASSERT_EQ(a.get_f32(e.name), b.get_f32(e.name)) << e.name;
}

TEST(Model, LoadsWeightsOfAnyDtypeIntoItsComputeDtype) {
    backend::Backend& be = backend::get_backend("cpu");
    Weights source(small_llama(), be, DType::F32);
    source.init(5);
    const Weights half = source.converted(be, storage_dtype_rule(DType::F16));
    Model m(small_llama(), be, DType::F32, 1, 4);
    m.load_weights(half);
    const std::string name = "model.embed_tokens.weight";
    EXPECT_EQ(m.save_param(name), half.get_f32(name));
    ModelConfig other = small_llama();
    other.n_layers += 1;
    Model wrong(other, be, DType::F32, 1, 4);
    EXPECT_THROW(wrong.load_weights(half), Error);
}

}  // namespace
}  // namespace tandem::model

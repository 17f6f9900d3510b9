// Initialisation: the family's distributions, and the same bits on every backend.
#include "model/model.h"

#include <gtest/gtest.h>

#include <cmath>

#include "backend/registry.h"
#include "common/test_util.h"

namespace tandem::model {
namespace {

ModelConfig medium(Family family) {
    ModelConfig c = preset_config(family == Family::Gpt2 ? "gpt2-124m" : "qwen3-tiny");
    c.n_layers = 4;
    c.d_model = 128;
    c.n_heads = c.n_heads_kv = 4;
    c.head_dim = 32;
    c.d_ffn = 512;
    c.vocab_size = 1000;
    c.max_seq_len = 64;
    c.validate();
    return c;
}

TEST(Init, FollowsTheFamilyRules) {
    for (Family family : {Family::Gpt2, Family::Llama}) {
        const ModelConfig c = medium(family);
        Model m(c, backend::get_backend("reference"), DType::F32, 1, 8);
        m.init(1234);
        const float residual_std = 0.02f / std::sqrt(2.0f * c.n_layers);
        for (const auto& e : m.layout().entries()) {
            const auto v = m.save_param(e.name);
            double sum = 0, sum_sq = 0;
            for (float x : v) {
                sum += x;
                sum_sq += double(x) * x;
            }
            const double mean = sum / v.size(), std = std::sqrt(sum_sq / v.size() - mean * mean);
            if (e.init == ParamInit::Ones) {
                for (float x : v) ASSERT_EQ(x, 1.0f) << e.name;
                EXPECT_EQ(e.role, ParamRole::Norm) << e.name;
            } else if (e.init == ParamInit::Zeros) {
                for (float x : v) ASSERT_EQ(x, 0.0f) << e.name;
                EXPECT_EQ(e.role, ParamRole::Bias) << e.name;
            } else {
                const bool is_residual = e.name.find("c_proj") != std::string::npos ||
                                         e.name.find("o_proj") != std::string::npos ||
                                         e.name.find("down_proj") != std::string::npos;
                const float want = is_residual ? residual_std : 0.02f;
                EXPECT_NEAR(std, want, want * 0.05) << e.name;
                EXPECT_NEAR(mean, 0.0, want * 0.05) << e.name;
            }
        }
    }
}

TEST(Init, TensorsDrawIndependentStreamsAndSeedsDiffer) {
    const ModelConfig c = medium(Family::Llama);
    Model a(c, backend::get_backend("reference"), DType::F32, 1, 8);
    Model b(c, backend::get_backend("reference"), DType::F32, 1, 8);
    a.init(1);
    b.init(2);
    const auto q = a.save_param("model.layers.0.self_attn.q_proj.weight");
    const auto k = a.save_param("model.layers.0.self_attn.k_proj.weight");
    EXPECT_NE(q[0], k[0]);
    EXPECT_NE(q, b.save_param("model.layers.0.self_attn.q_proj.weight"));
}

TEST(Init, EveryBackendGetsTheSameBits) {
    const ModelConfig c = medium(Family::Gpt2);
    Model ref(c, backend::get_backend("reference"), DType::F32, 1, 8);
    ref.init(77);
    for (const auto& name : testing::backends_under_test()) {
        Model other(c, backend::get_backend(name), DType::F32, 1, 8);
        other.init(77);
        for (const auto& e : ref.layout().entries())
            ASSERT_EQ(ref.save_param(e.name), other.save_param(e.name)) << name << " " << e.name;
    }
}

}  // namespace
}  // namespace tandem::model

// AdamW over flat buffers: decay on matrix weights only, clip_grad_norm_ semantics, PyTorch's
// update with bias correction, and the step counter.
#include "train/adamw.h"

#include <gtest/gtest.h>

#include <cmath>

#include "backend/registry.h"
#include "common/test_util.h"
#include "core/rng.h"
#include "model/model.h"

namespace tandem::train {
namespace {

model::Model tiny_model() {
    model::Model m(model::preset_config("qwen3-tiny"), backend::get_backend("reference"),
                   DType::F32, 1, 4);
    m.init(5);
    return m;
}

void fill_grads(model::Model& m, float value) {
    std::vector<float> g(m.layout().n_params(), value);
    m.backend().copy_to_device(m.grads().data, g.data(), m.grads().bytes());
}

std::vector<float> host_grads(const model::Model& m) {
    std::vector<float> g(m.layout().n_params());
    m.backend().copy_to_host(g.data(), m.grads().data, m.grads().bytes());
    return g;
}

std::vector<float> host_first_moment(const AdamW& opt) {
    std::vector<float> m(opt.m().numel());
    opt.backend()->copy_to_host(m.data(), opt.m().data, opt.m().bytes());
    return m;
}

TEST(AdamW, DecaysOnlyMatrixWeights) {
    auto m = tiny_model();
    AdamW opt(m.backend(), m.layout(), DType::F32, {.weight_decay = 0.5f, .grad_clip = 0});
    std::vector<std::vector<float>> before;
    for (const auto& e : m.layout().entries()) before.push_back(m.save_param(e.name));
    m.zero_grad();  // zero gradient: Adam's step is 0, only the decay acts
    opt.step(m.params(), m.grads(), 0.1f);
    for (size_t i = 0; i < m.layout().entries().size(); ++i) {
        const auto& e = m.layout().entries()[i];
        const auto after = m.save_param(e.name);
        const float factor = e.role == model::ParamRole::Matrix ? 1.0f - 0.1f * 0.5f : 1.0f;
        for (size_t j = 0; j < after.size(); ++j)
            ASSERT_FLOAT_EQ(after[j], before[i][j] * factor) << e.name << "[" << j << "]";
    }
}

TEST(AdamW, ClipsTheGlobalNormLikeClipGradNorm) {
    auto m = tiny_model();
    const int64_t n = m.layout().n_params();
    AdamW opt(m.backend(), m.layout(), DType::F32, {.grad_clip = 1.0f});
    fill_grads(m, 0.5f);
    const double norm = opt.step(m.params(), m.grads(), 0.0f);
    EXPECT_NEAR(norm, 0.5 * std::sqrt(double(n)), 1e-6 * norm);
    // The update sees the gradient times coef = max_norm / (norm + 1e-6): after one step from
    // zero moments, m = (1 - beta1) * clipped gradient. The gradients themselves stay.
    const double want = 0.5 * 1.0 / (norm + 1e-6);
    const float one_minus_b1 = 1.0f - opt.config().beta1;
    for (float mi : host_first_moment(opt)) ASSERT_NEAR(mi, one_minus_b1 * want, 1e-6 * want);
    for (float g : host_grads(m)) ASSERT_EQ(g, 0.5f);
    // Below the limit the gradient enters unchanged: m = beta1 m + (1 - beta1) g.
    const std::vector<float> m_before = host_first_moment(opt);
    fill_grads(m, 1e-6f);
    opt.step(m.params(), m.grads(), 0.0f);
    const std::vector<float> m_after = host_first_moment(opt);
    for (size_t i = 0; i < m_after.size(); ++i)
        ASSERT_FLOAT_EQ(m_after[i], opt.config().beta1 * m_before[i] + one_minus_b1 * 1e-6f);
    EXPECT_EQ(opt.step_count(), 2);
}

// A gradient handed over in pieces (PowerSGD's estimate, never stored whole) updates the
// weights and moments to the same bits as the same gradient stored whole.
TEST(AdamW, AGradientInPiecesGivesTheBitsOfTheWhole) {
    auto whole = tiny_model(), pieces = tiny_model();
    const int64_t n = whole.layout().n_params();
    ASSERT_GT(n, 2 * 16384) << "several pieces";
    AdamW a(whole.backend(), whole.layout(), DType::F32, {.weight_decay = 0.1f, .grad_clip = 1.0f});
    AdamW b(pieces.backend(), pieces.layout(), DType::F32,
            {.weight_decay = 0.1f, .grad_clip = 1.0f});
    std::vector<float> g(n);
    int64_t asked = 0;
    for (int step = 0; step < 3; ++step) {
        fill_normal(g.data(), n, RngKey{8, RngPurpose::Init, 0, uint32_t(step)});
        whole.backend().copy_to_device(whole.grads().data, g.data(), whole.grads().bytes());
        const double norm = a.grad_norm(whole.grads());
        a.update(whole.params(), whole.grads(), 1e-2f, norm);
        b.update(
            pieces.params(),
            [&](int64_t begin, int64_t count, float* out) {
                std::copy(g.begin() + begin, g.begin() + begin + count, out);
                asked += count;
            },
            1e-2f, norm);
    }
    EXPECT_EQ(asked, 3 * n);
    for (const auto& e : whole.layout().entries())
        ASSERT_EQ(whole.save_param(e.name), pieces.save_param(e.name)) << e.name;
    EXPECT_EQ(host_first_moment(a), host_first_moment(b));
}

TEST(AdamW, FirstStepsFollowPyTorchsUpdate) {
    auto m = tiny_model();
    const AdamWConfig cfg{
        .beta1 = 0.9f, .beta2 = 0.95f, .eps = 1e-8f, .weight_decay = 0.1f, .grad_clip = 0};
    AdamW opt(m.backend(), m.layout(), DType::F32, cfg);
    const std::string name = "model.layers.0.mlp.up_proj.weight";  // decayed
    double p = m.save_param(name)[3], mom = 0, var = 0;
    const float lr = 0.01f;
    for (int step = 1; step <= 3; ++step) {
        const float g = 0.1f * step - 0.25f;
        fill_grads(m, g);
        opt.step(m.params(), m.grads(), lr);
        p *= 1 - lr * cfg.weight_decay;
        mom = cfg.beta1 * mom + (1 - cfg.beta1) * g;
        var = cfg.beta2 * var + (1 - cfg.beta2) * double(g) * g;
        const double bc1 = 1 - std::pow(double(cfg.beta1), step);
        const double bc2 = 1 - std::pow(double(cfg.beta2), step);
        p -= lr / bc1 * mom / (std::sqrt(var) / std::sqrt(bc2) + cfg.eps);
        EXPECT_NEAR(m.save_param(name)[3], p, 1e-6) << "step " << step;
    }
}

TEST(AdamW, RejectsImpossibleHyperParameters) {
    auto m = tiny_model();
    EXPECT_THROW(AdamW(m.backend(), m.layout(), DType::F32, {.beta1 = 1.0f}), Error);
    EXPECT_THROW(AdamW(m.backend(), m.layout(), DType::F32, {.eps = 0}), Error);
    EXPECT_THROW(AdamW(m.backend(), m.layout(), DType::F32, {.grad_clip = -1}), Error);
}

}  // namespace
}  // namespace tandem::train

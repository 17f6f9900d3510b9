// GRPO's objective against PyTorch (tests/rl/make_grpo_fixture.py): advantages, the loss and
// every gradient of a tiny Qwen3-shaped model on fixed rollouts, through Model::token_losses,
// grpo_terms and the weighted cross-entropy backward; and the algebra's edge cases.
#include "rl/grpo_loss.h"

#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>

#include "backend/registry.h"
#include "common/error_message.h"
#include "common/test_util.h"
#include "io/safetensors.h"
#include "model/model.h"

namespace tandem::rl {
namespace {

using testing::error_message;
using testing::relative_error;

struct Fixture {
    nlohmann::json meta;
    io::SafetensorsReader tensors;

    Fixture()
        : meta(nlohmann::json::parse(std::ifstream(testing::test_data_path("rl/fixtures/grpo_tiny.json")))),
          tensors(testing::test_data_path("rl/fixtures/grpo_tiny.safetensors")) {}

    template <typename T>
    std::vector<T> values(const std::string& name) const {
        const auto& t = tensors.get(name);
        const auto* p = static_cast<const T*>(t.data);
        return {p, p + t.numel()};
    }
    std::vector<double> doubles(const std::string& name) const {
        const std::vector<float> f = values<float>(name);
        return {f.begin(), f.end()};
    }
};

GrpoLossConfig config_of(const nlohmann::json& hp) {
    return {.mode = advantage_mode_from_string(hp["mode"]),
            .epsilon_low = hp["epsilon_low"],
            .epsilon_high = hp["epsilon_high"],
            .beta = hp["beta"],
            .max_completion_tokens = hp["max_completion_tokens"]};
}

struct Case {
    std::string name, backend;
    DType dtype;
    double tolerance;
};

class GrpoTorchParity : public ::testing::TestWithParam<Case> {};

TEST_P(GrpoTorchParity, LossAndGradientsMatch) {
    const Case c = GetParam();
    const Fixture f;
    const GrpoLossConfig config = config_of(f.meta["cases"][c.name]);
    const int64_t B = f.meta["batch"], T = f.meta["seq"], G = f.meta["group_size"];
    model::Model m(model::config_from_json(f.meta["config"]), backend::get_backend(c.backend), c.dtype, B, T);
    for (const auto& e : m.layout().entries()) m.load_param(e.name, f.values<float>("weights/" + e.name));

    const std::vector<double> rewards = f.doubles("rewards");
    const std::vector<double> advantages = group_advantages(rewards, G, config.mode);
    const std::vector<double> want_advantages = f.doubles(c.name + "/advantages");
    for (int64_t i = 0; i < B; ++i) EXPECT_NEAR(advantages[i], want_advantages[i], 1e-6) << i;

    const std::vector<int32_t> tokens = f.values<int32_t>("tokens"), targets = f.values<int32_t>("targets");
    m.forward(tokens, targets, B, T);
    std::vector<double> logp(B * T);
    m.token_losses(logp);
    int64_t n_tokens = 0;
    for (size_t i = 0; i < logp.size(); ++i) {
        logp[i] = -logp[i];
        n_tokens += targets[i] != model::kIgnoreIndex;
    }
    const std::vector<double> logp_old = f.doubles("logp_old"), logp_ref = f.doubles("logp_ref");
    const double scale = 1 / grpo_normalizer(n_tokens, B, config);
    const GrpoTerms terms = grpo_terms({.B = B, .T = T, .targets = targets, .logp = logp, .logp_old = logp_old,
                                        .logp_ref = config.beta > 0 ? std::span<const double>(logp_ref)
                                                                    : std::span<const double>(),
                                        .advantages = advantages},
                                       config, scale);
    const double want_loss = f.values<float>(c.name + "/loss")[0];
    EXPECT_LE(std::abs(terms.loss_sum - want_loss) / std::abs(want_loss), c.tolerance)
        << "loss " << terms.loss_sum << " vs torch " << want_loss;
    EXPECT_GT(terms.n_clipped, 0);  // the fixture's ratios exercise the clip
    EXPECT_LT(terms.n_clipped, terms.n_tokens);

    m.set_loss_weights(terms.weights);
    m.backward(1.0);
    for (const auto& e : m.layout().entries())
        EXPECT_LE(relative_error(m.save_grad(e.name), f.values<float>(c.name + "/grads/" + e.name)), c.tolerance)
            << "gradient of " << e.name;
}

std::vector<Case> cases() {
    std::vector<Case> out;
    for (const char* name : {"grpo", "dr_grpo"}) {
        out.push_back({name, "reference", DType::F64, 1e-5});  // the math, f32 inputs aside
        out.push_back({name, "cpu", DType::F32, 1e-4});        // the training path, as torch_parity
    }
    return out;
}

INSTANTIATE_TEST_SUITE_P(Fixture, GrpoTorchParity, ::testing::ValuesIn(cases()),
                         [](const auto& info) { return info.param.name + "_" + info.param.backend; });

TEST(GrpoLoss, EqualRewardsInAGroupGiveZeroAdvantages) {
    const std::vector<double> rewards = {0.5, 0.5, 0.5, 1, 0, 1};
    for (AdvantageMode mode : {AdvantageMode::Grpo, AdvantageMode::DrGrpo}) {
        const std::vector<double> a = group_advantages(rewards, 3, mode);
        EXPECT_EQ(a[0], 0.0);
        EXPECT_EQ(a[1], 0.0);
        EXPECT_EQ(a[2], 0.0);
        EXPECT_GT(a[3], 0.0);
        EXPECT_LT(a[4], 0.0);
    }
    // Normalised: the group's std (unbiased) divides; Dr. GRPO keeps the raw difference.
    EXPECT_NEAR(group_advantages(rewards, 3, AdvantageMode::Grpo)[4], -(2.0 / 3) / (std::sqrt(1.0 / 3) + 1e-4), 1e-12);
    EXPECT_NEAR(group_advantages(rewards, 3, AdvantageMode::DrGrpo)[4], -2.0 / 3, 1e-12);
}

TEST(GrpoLoss, ZeroAdvantageWithoutKlGivesZeroWeights) {
    const std::vector<int32_t> targets = {-100, 5, 6, -100};
    const std::vector<double> logp = {0, -1, -2, 0}, old = {0, -1.5, -1, 0}, adv = {0, 0};
    const GrpoTerms t = grpo_terms({.B = 2, .T = 2, .targets = targets, .logp = logp, .logp_old = old,
                                    .advantages = adv},
                                   {}, 1.0);
    EXPECT_EQ(t.loss_sum, 0.0);
    EXPECT_EQ(t.n_tokens, 2);
    for (float w : t.weights) EXPECT_EQ(w, 0.0f);
}

TEST(GrpoLoss, TokenTermFollowsTheClip) {
    const GrpoLossConfig c{.epsilon_low = 0.2, .epsilon_high = 0.2};
    // Positive advantage, ratio above 1 + eps: clipped, no gradient.
    TokenTerm t = grpo_token_term(std::log(1.5), 0, 0, 2.0, c);
    EXPECT_TRUE(t.is_clipped);
    EXPECT_NEAR(t.loss, -1.2 * 2.0, 1e-12);
    EXPECT_EQ(t.dloss_dlogp, 0.0);
    // Positive advantage, ratio below 1 - eps: the unclipped term is the minimum.
    t = grpo_token_term(std::log(0.5), 0, 0, 2.0, c);
    EXPECT_FALSE(t.is_clipped);
    EXPECT_NEAR(t.dloss_dlogp, -0.5 * 2.0, 1e-12);
    // Negative advantage, ratio below 1 - eps: clipped.
    EXPECT_TRUE(grpo_token_term(std::log(0.5), 0, 0, -1.0, c).is_clipped);
    // The k3 KL: zero where the policy equals the reference, positive elsewhere.
    const GrpoLossConfig kl{.beta = 0.1};
    EXPECT_EQ(grpo_token_term(-1, -1, -1, 0, kl).kl, 0.0);
    t = grpo_token_term(-1, -1, -2, 0, kl);
    EXPECT_NEAR(t.kl, std::exp(-1.0) + 1 - 1, 1e-12);
    EXPECT_NEAR(t.dloss_dlogp, 0.1 * (1 - std::exp(-1.0)), 1e-12);
}

TEST(GrpoLoss, BadGroupsAndModesAreRefusedByName) {
    const std::vector<double> r = {1, 0, 1};
    EXPECT_NE(error_message([&] { group_advantages(r, 2, AdvantageMode::Grpo); }).find("group size 2"),
              std::string::npos);
    EXPECT_NE(error_message([&] { group_advantages(r, 1, AdvantageMode::Grpo); }).find("at least 2"),
              std::string::npos);
    EXPECT_NE(error_message([] { advantage_mode_from_string("ppo"); }).find("'ppo'"), std::string::npos);
    EXPECT_NE(error_message([] { grpo_normalizer(5, 2, {.mode = AdvantageMode::DrGrpo}); })
                  .find("max_completion_tokens"),
              std::string::npos);
}

}  // namespace
}  // namespace tandem::rl

// tandem against PyTorch (fixtures from make_torch_fixtures.py): a tiny GPT-2 (tied head), a
// tiny Qwen3 (GQA, QK-norm, untied head), a tiny Llama 3 (theta 500000, llama3 rope_scaling)
// and a tiny Qwen2 (GQA, q/k/v biases, tied head) with the same weights and batch must give the
// same logits and loss (<= 1e-5 relative), every gradient and the weights after 3 clipped AdamW
// steps (<= 1e-4 relative, ||a - b|| / ||b|| per tensor), on every backend.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>

#include <nlohmann/json.hpp>

#include "backend/registry.h"
#include "common/test_util.h"
#include "io/safetensors.h"
#include "model/model.h"
#include "train/adamw.h"

namespace tandem {
namespace {

using testing::relative_error;

struct Fixture {
    nlohmann::json meta;
    io::SafetensorsReader tensors;

    explicit Fixture(const std::string& name)
        : meta(read_json(testing::test_data_path("interop/fixtures/" + name + ".json"))),
          tensors(testing::test_data_path("interop/fixtures/" + name + ".safetensors")) {}

    static nlohmann::json read_json(const std::string& path) {
        std::ifstream in(path);
        if (!in) throw Error(path, ": cannot open (run tests/interop/make_torch_fixtures.py)");
        return nlohmann::json::parse(in);
    }
    std::vector<float> floats(const std::string& name) const {
        const auto& t = tensors.get(name);
        EXPECT_EQ(t.dtype, DType::F32) << name;
        const auto* p = static_cast<const float*>(t.data);
        return {p, p + t.numel()};
    }
    std::vector<int32_t> ints(const std::string& name) const {
        const auto& t = tensors.get(name);
        EXPECT_EQ(t.dtype, DType::I32) << name;
        const auto* p = static_cast<const int32_t*>(t.data);
        return {p, p + t.numel()};
    }
};

std::vector<float> to_host(const model::Model& m, Tensor t) {
    std::vector<float> out(t.numel());
    m.backend().copy_to_host(out.data(), t.data, t.bytes());
    return out;
}

void load_weights(model::Model& m, const Fixture& f) {
    for (const auto& e : m.layout().entries()) m.load_param(e.name, f.floats("weights/" + e.name));
}

// GPT-2's c_attn.bias holds the query, key and value biases, C each.
bool is_attention_key_bias(const std::string& name) {
    return name.size() > 17 && name.compare(name.size() - 17, 17, ".attn.c_attn.bias") == 0;
}

struct Case {
    std::string fixture, backend;
};

void PrintTo(const Case& c, std::ostream* os) { *os << c.fixture << " on " << c.backend; }

class TorchParity : public ::testing::TestWithParam<Case> {};

TEST_P(TorchParity, LogitsLossGradientsAndAdamWStepsMatch) {
    const Case c = GetParam();
    const Fixture f(c.fixture);
    const model::ModelConfig config = model::config_from_json(f.meta["config"]);
    const int64_t B = f.meta["batch"], T = f.meta["seq"];
    const int32_t ignore = f.meta["ignore_index"];
    const auto tokens = f.ints("tokens"), targets = f.ints("targets");
    model::Model m(config, backend::get_backend(c.backend), DType::F32, B, T);

    // The layout and the fixture name the same tensors.
    size_t n_weights = 0;
    for (const auto& t : f.tensors.tensors()) n_weights += t.name.rfind("weights/", 0) == 0;
    EXPECT_EQ(n_weights, m.layout().entries().size());
    load_weights(m, f);

    const double loss = m.forward(tokens, targets, B, T, ignore);
    const double want_loss = f.floats("loss")[0];
    EXPECT_LE(std::abs(loss - want_loss) / std::abs(want_loss), 1e-5)
        << "loss " << loss << " vs torch " << want_loss;
    const double logits_error = relative_error(to_host(m, m.logits()), f.floats("logits"));
    EXPECT_LE(logits_error, 1e-5) << "logits";
    RecordProperty("logits_rel_error", std::to_string(logits_error));

    m.backward();
    double worst_grad = 0;
    for (const auto& e : m.layout().entries()) {
        const double err = relative_error(m.save_grad(e.name), f.floats("grads/" + e.name));
        EXPECT_LE(err, 1e-4) << "gradient of " << e.name;
        worst_grad = std::max(worst_grad, err);
    }

    // Three steps of clip + AdamW on the same batch, from the same weights.
    const auto& hp = f.meta["adamw"];
    load_weights(m, f);
    train::AdamW opt(m.backend(), m.layout(), DType::F32,
                     {.beta1 = hp["beta1"], .beta2 = hp["beta2"], .eps = hp["eps"],
                      .weight_decay = hp["weight_decay"], .grad_clip = hp["grad_clip"]});
    const auto& want_norms = f.meta["grad_norms_before_clip"];
    for (int step = 0; step < hp["steps"].get<int>(); ++step) {
        m.zero_grad();
        m.forward(tokens, targets, B, T, ignore);
        m.backward();
        const double norm = opt.step(m.params(), m.grads(), hp["lr"].get<float>());
        const double want_norm = want_norms[step];
        EXPECT_LE(std::abs(norm - want_norm) / want_norm, 1e-4) << "grad norm at step " << step;
    }
    double worst_step = 0;
    const float lr = hp["lr"];
    for (const auto& e : m.layout().entries()) {
        auto got = m.save_param(e.name), want = f.floats("adamw_step3/" + e.name);
        if (is_attention_key_bias(e.name)) {
            // The loss does not depend on the key bias (it shifts every score of a row by the
            // same q.b), so its exact gradient is 0 and each side's rounding noise (1e-17 in
            // torch's f64, ~1e-8 in f32) is what Adam normalises into a step of up to lr. Only
            // the bound is comparable there; the query and value parts must match.
            const int64_t C = config.d_model;
            const auto before = f.floats("weights/" + e.name);
            for (int64_t i = C; i < 2 * C; ++i)
                EXPECT_LE(std::abs(got[i] - before[i]), 3.5 * lr) << e.name << "[" << i << "]";
            got.erase(got.begin() + C, got.begin() + 2 * C);
            want.erase(want.begin() + C, want.begin() + 2 * C);
        }
        const double err = relative_error(got, want);
        EXPECT_LE(err, 1e-4) << "weights after 3 AdamW steps: " << e.name;
        worst_step = std::max(worst_step, err);
    }
    std::printf("[ parity   ] %s on %s: loss rel %.2e, logits rel %.2e, worst grad rel %.2e, "
                "worst step-3 weight rel %.2e\n",
                c.fixture.c_str(), c.backend.c_str(), std::abs(loss - want_loss) / want_loss,
                logits_error, worst_grad, worst_step);
}

std::vector<Case> cases() {
    std::vector<Case> out;
    for (const char* fixture : {"gpt2_tiny", "qwen3_tiny", "llama3_tiny", "qwen2_tiny"})
        for (const auto& be : backend::available_backends())
            if (backend::get_backend(be).supports(DType::F32)) out.push_back({fixture, be});
    return out;
}

INSTANTIATE_TEST_SUITE_P(Fixtures, TorchParity, ::testing::ValuesIn(cases()),
                         [](const auto& info) {
                             return info.param.fixture + "_" + info.param.backend;
                         });

// The Llama 3 fixture only tests the rescaling if its logits depend on it: without the
// rope_scaling the same weights must give visibly different logits.
TEST(TorchParityFixtures, Llama3LogitsDependOnTheRopeScaling) {
    const Fixture f("llama3_tiny");
    model::ModelConfig config = model::config_from_json(f.meta["config"]);
    ASSERT_TRUE(config.rope_scaling.is_on());
    config.rope_scaling = {};
    const int64_t B = f.meta["batch"], T = f.meta["seq"];
    model::Model m(config, backend::get_backend("reference"), DType::F32, B, T);
    load_weights(m, f);
    m.forward(f.ints("tokens"), {}, B, T);
    EXPECT_GT(relative_error(to_host(m, m.logits()), f.floats("logits")), 1e-2);
}

}  // namespace
}  // namespace tandem

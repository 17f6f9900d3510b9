// Whole-model finite-difference gradient checks (double, reference backend) for each family
// with tied and untied heads, plus the Model's step mechanics: accumulation, smaller batches,
// token validation.
#include "model/model.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "grad_check.h"

namespace tandem::model {
namespace {

using testing::finite_difference_error;
using testing::reference_backend;

ModelConfig tiny_config(Family family, bool tied, bool gqa_qk_norm) {
    ModelConfig c;
    c.family = family;
    c.n_layers = 2;
    c.d_model = 12;
    c.vocab_size = 13;
    c.max_seq_len = 8;
    c.tie_embeddings = tied;
    if (family == Family::Gpt2) {
        c.n_heads = c.n_heads_kv = 3;
        c.head_dim = 4;
        c.d_ffn = 20;
    } else {
        c.n_heads = 4;
        c.n_heads_kv = gqa_qk_norm ? 2 : 4;
        c.head_dim = 6;  // H * D = 24 != C, as in Qwen3
        c.d_ffn = 10;
        c.qk_norm = gqa_qk_norm;
    }
    c.validate();
    return c;
}

struct Batch {
    int64_t B = 2, T = 6;
    std::vector<int32_t> tokens{1, 5, 7, 12, 0, 3, 4, 4, 9, 2, 11, 6};
    std::vector<int32_t> targets{5, 7, kIgnoreIndex, 0, 3, 8, 4, 9, 2, 11, 6, kIgnoreIndex};
};

// Larger weights than the init so that every nonlinearity is away from its linear regime.
void randomise(Model& m, uint64_t seed) {
    m.init(seed);
    for (const auto& e : m.layout().entries()) {
        auto v = testing::random_normal(e.numel(), seed + e.offset, 0.3f);
        if (e.role == ParamRole::Norm)
            for (float& x : v) x += 1.0f;
        m.load_param(e.name, v);
    }
}

struct GradCase {
    const char* name;
    Family family;
    bool tied, gqa_qk_norm;
    bool qkv_bias = false;     // Qwen2
    bool llama3_rope = false;  // Llama 3.1's rope_scaling over 32 original positions: with
                               // D = 6, pair 0 stays, pairs 1 and 2 are slowed
};

void PrintTo(const GradCase& k, std::ostream* os) { *os << k.name; }

class ModelGradients : public ::testing::TestWithParam<GradCase> {};

TEST_P(ModelGradients, MatchFiniteDifferencesForEveryTensor) {
    const GradCase k = GetParam();
    ModelConfig c = tiny_config(k.family, k.tied, k.gqa_qk_norm);
    c.qkv_bias = k.qkv_bias;
    if (k.qkv_bias) c.n_heads_kv = 2;  // Qwen2 uses grouped-query attention too
    if (k.llama3_rope) c.rope_scaling = {8.0f, 1.0f, 4.0f, 32};
    Model m(c, reference_backend(), DType::F64, 2, 8);
    randomise(m, 42);
    const Batch batch;
    auto loss = [&] { return m.forward(batch.tokens, batch.targets, batch.B, batch.T); };
    loss();
    m.zero_grad();
    m.backward();
    EXPECT_EQ(m.n_targets(), 10);
    for (const auto& e : m.layout().entries()) {
        const Tensor p = m.layout().view(m.params(), e.name);
        const Tensor g = m.layout().view(m.grads(), e.name);
        EXPECT_LT(finite_difference_error(p, g, loss, 12), 1e-6) << e.name;
    }
}

INSTANTIATE_TEST_SUITE_P(
    Families, ModelGradients,
    ::testing::Values(GradCase{"Gpt2Tied", Family::Gpt2, true, false},
                      GradCase{"Gpt2Untied", Family::Gpt2, false, false},
                      GradCase{"LlamaTied", Family::Llama, true, false},
                      GradCase{"LlamaUntied", Family::Llama, false, false},
                      GradCase{"Qwen3GqaQkNormTied", Family::Llama, true, true},
                      GradCase{"Qwen3GqaQkNormUntied", Family::Llama, false, true},
                      GradCase{"Qwen2GqaQkvBiasTied", Family::Llama, true, false, true},
                      GradCase{"Llama3ScaledRopeUntied", Family::Llama, false, false, false,
                               true}),
    [](const auto& info) { return std::string(info.param.name); });

std::vector<double> all_grads(const Model& m) { return testing::read_f64(m.grads()); }

TEST(Model, BackwardAccumulatesAcrossMicroBatches) {
    Model m(tiny_config(Family::Llama, false, true), reference_backend(), DType::F64, 2, 8);
    randomise(m, 7);
    const Batch batch;
    m.zero_grad();
    m.forward(batch.tokens, batch.targets, batch.B, batch.T);
    m.backward();
    const auto once = all_grads(m);
    m.forward(batch.tokens, batch.targets, batch.B, batch.T);
    m.backward();
    const auto twice = all_grads(m);
    for (size_t i = 0; i < once.size(); ++i) ASSERT_NEAR(twice[i], 2 * once[i], 1e-12) << i;
}

// Data parallel reduces each range as backward reports it finished: a range must not change
// after its report, the ranges must cover the gradient once, and the blocks come last first.
TEST(Model, BackwardReportsEachRangeOnceItsGradientIsFinal) {
    for (const Family family : {Family::Gpt2, Family::Llama})
        for (const bool tied : {true, false}) {
            Model m(tiny_config(family, tied, false), reference_backend(), DType::F64, 2, 8);
            randomise(m, 11);
            const Batch batch;
            m.zero_grad();
            m.forward(batch.tokens, batch.targets, batch.B, batch.T);
            struct Report {
                int64_t begin, count;
                std::vector<double> values;
            };
            std::vector<Report> reports;
            m.backward(0.1, [&](int64_t begin, int64_t count) {
                const auto all = all_grads(m);
                reports.push_back({begin, count, std::vector<double>(all.begin() + begin, all.begin() + begin + count)});
            });
            const auto final_grads = all_grads(m);
            const std::string what = std::string(family == Family::Gpt2 ? "gpt2" : "llama") + (tied ? " tied" : " untied");
            ASSERT_EQ(reports.size(), 2u + 2u) << what;  // head and final norm, 2 blocks, embeddings
            std::vector<int> covered(final_grads.size(), 0);
            for (const Report& r : reports) {
                for (int64_t i = 0; i < r.count; ++i) {
                    ++covered[size_t(r.begin + i)];
                    ASSERT_EQ(r.values[size_t(i)], final_grads[size_t(r.begin + i)]) << what << " element " << r.begin + i;
                }
            }
            EXPECT_EQ(std::count(covered.begin(), covered.end(), 1), int64_t(covered.size())) << what;
            EXPECT_GT(reports[1].begin, reports[2].begin) << what << ": block 1 before block 0";
            EXPECT_EQ(reports.back().begin, 0) << what << ": the embeddings last";
            // The same gradient as the backward without reports.
            m.zero_grad();
            m.forward(batch.tokens, batch.targets, batch.B, batch.T);
            m.backward(0.1);
            EXPECT_EQ(all_grads(m), final_grads) << what;
        }
}

TEST(Model, SmallerStepThanTheArenaMatchesARowOfTheLargerOne) {
    Model m(tiny_config(Family::Gpt2, true, false), reference_backend(), DType::F64, 2, 8);
    randomise(m, 9);
    const Batch batch;
    m.forward(batch.tokens, {}, batch.B, batch.T);
    const auto logits_full = testing::read_f64(m.logits());
    // The first sequence alone, its first 4 positions: causal, so the logits must agree.
    const std::vector<int32_t> first(batch.tokens.begin(), batch.tokens.begin() + 4);
    m.forward(first, {}, 1, 4);
    const auto logits_part = testing::read_f64(m.logits());
    ASSERT_EQ(m.logits().shape, (Shape{1, 4, 13}));
    for (size_t i = 0; i < logits_part.size(); ++i)
        EXPECT_NEAR(logits_part[i], logits_full[i], 1e-12) << i;
}

TEST(Model, RejectsTokensOutsideTheVocabularyNamingThePosition) {
    Model m(tiny_config(Family::Llama, true, false), reference_backend(), DType::F64, 1, 4);
    m.init(1);
    try {
        m.forward(std::vector<int32_t>{1, 2, 13, 0}, {}, 1, 4);
        FAIL();
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("token 13 at position 2"), std::string::npos)
            << e.what();
    }
    EXPECT_THROW(m.forward(std::vector<int32_t>{1, 2, 3, 0}, std::vector<int32_t>{1, -1, 2, 3},
                           1, 4),
                 Error);
    EXPECT_THROW(m.forward(std::vector<int32_t>(10, 0), {}, 2, 5), Error);  // beyond the arena
}

TEST(Model, RejectsSequencesLongerThanTheConfig) {
    EXPECT_THROW(Model(tiny_config(Family::Gpt2, true, false), reference_backend(), DType::F64, 1,
                       9),
                 Error);
}

TEST(Model, LossIsZeroAndGradientsVanishWhenEveryTargetIsIgnored) {
    Model m(tiny_config(Family::Llama, true, false), reference_backend(), DType::F64, 1, 4);
    m.init(3);
    m.zero_grad();
    EXPECT_EQ(m.forward(std::vector<int32_t>{1, 2, 3, 4}, std::vector<int32_t>(4, kIgnoreIndex),
                        1, 4),
              0.0);
    m.backward();
    for (double g : all_grads(m)) ASSERT_EQ(g, 0.0);
}

}  // namespace
}  // namespace tandem::model

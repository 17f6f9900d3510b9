// Finite-difference gradient checks of every layer, in double on the reference backend: the
// loss is sum(output * R) for a fixed random R, so the backward pass runs with dy = R.
#include <gtest/gtest.h>

#include "model/layers/attention.h"
#include "model/layers/embedding.h"
#include "model/layers/lm_head.h"
#include "model/layers/mlp.h"
#include "model/layers/norm.h"
#include "grad_check.h"

namespace tandem::model {
namespace {

using testing::DeviceTensor;
using testing::dot;
using testing::finite_difference_error;
using testing::random_f64;
using testing::read_f64;
using testing::reference_backend;
using testing::zeros_f64;

constexpr double kTolerance = 1e-6;

std::vector<double> random_doubles(int64_t n, uint64_t seed) {
    const auto f = testing::random_normal(n, seed);
    return {f.begin(), f.end()};
}

TEST(LayerGradients, Embedding) {
    auto& be = reference_backend();
    const int64_t B = 2, T = 5, C = 6, V = 7, T_max = 8;
    DeviceTensor wte = random_f64({V, C}, 1), wpe = random_f64({T_max, C}, 2);
    DeviceTensor tokens = DeviceTensor::from_ints(be, {1, 3, 3, 0, 6, 6, 2, 1, 1, 5}, {B, T});
    DeviceTensor out = zeros_f64({B, T, C});
    const auto r = random_doubles(B * T * C, 3);
    const Embedding w{wte, wpe};
    auto loss = [&] {
        embedding_forward(be, out, tokens, w);
        return dot(out, r);
    };
    DeviceTensor dwte = zeros_f64({V, C}), dwpe = zeros_f64({T_max, C});
    DeviceTensor dout = DeviceTensor::from(be, testing::random_normal(B * T * C, 3), {B, T, C},
                                           DType::F64);
    embedding_backward(be, {dwte, dwpe}, dout, tokens);
    EXPECT_LT(finite_difference_error(wte, dwte, loss), kTolerance);
    EXPECT_LT(finite_difference_error(wpe, dwpe, loss), kTolerance);
}

class NormGradients : public ::testing::TestWithParam<NormKind> {};

TEST_P(NormGradients, MatchFiniteDifferences) {
    auto& be = reference_backend();
    const NormKind kind = GetParam();
    const bool has_bias = kind == NormKind::LayerNorm;
    const int64_t N = 6, C = 9;
    DeviceTensor x = random_f64({N, C}, 4, 2.0f), weight = random_f64({C}, 5),
                 bias = random_f64({C}, 6);
    DeviceTensor y = zeros_f64({N, C}), mean = zeros_f64({N}), rstd = zeros_f64({N});
    const Norm n{kind, weight, has_bias ? Tensor(bias) : Tensor{}, 1e-5f};
    const NormSaved saved{has_bias ? Tensor(mean) : Tensor{}, rstd};
    const auto r = random_doubles(N * C, 7);
    auto loss = [&] {
        norm_forward(be, y, saved, x, n);
        return dot(y, r);
    };
    loss();
    DeviceTensor dy = DeviceTensor::from(be, testing::random_normal(N * C, 7), {N, C}, DType::F64);
    // dx starts at 1 to check that the backward pass adds into the residual gradient.
    DeviceTensor dx = DeviceTensor::from(be, std::vector<float>(N * C, 1.0f), {N, C}, DType::F64);
    DeviceTensor dweight = zeros_f64({C}), dbias = zeros_f64({C});
    norm_backward(be, dx, {kind, dweight, has_bias ? Tensor(dbias) : Tensor{}, 1e-5f}, dy, x, n,
                  saved);
    std::vector<double> dx_only = read_f64(dx);
    for (double& v : dx_only) v -= 1.0;
    testing::write_f64(dx, dx_only);
    EXPECT_LT(finite_difference_error(x, dx, loss), kTolerance);
    EXPECT_LT(finite_difference_error(weight, dweight, loss), kTolerance);
    if (has_bias) EXPECT_LT(finite_difference_error(bias, dbias, loss), kTolerance);
}

INSTANTIATE_TEST_SUITE_P(Kinds, NormGradients,
                         ::testing::Values(NormKind::LayerNorm, NormKind::RmsNorm),
                         [](const auto& info) {
                             return info.param == NormKind::LayerNorm ? "LayerNorm" : "RmsNorm";
                         });

struct AttentionCase {
    const char* name;
    int64_t H, Hkv, D, C;
    bool is_gpt2;  // Conv1D weights with biases, no RoPE
    bool has_qk_norm;
    bool qkv_bias = false;  // Qwen2: a bias on the QKV product only
    // Llama 3's rescaled frequencies over 64 original positions: with D = 8 (wavelengths 6.3,
    // 63, 628, 6283) one pair stays, one is blended and two are slowed.
    bool llama3_rope = false;
};

void PrintTo(const AttentionCase& k, std::ostream* os) { *os << k.name; }

class AttentionGradients : public ::testing::TestWithParam<AttentionCase> {};

TEST_P(AttentionGradients, MatchFiniteDifferences) {
    auto& be = reference_backend();
    const AttentionCase k = GetParam();
    const int64_t B = 2, T = 5, C = k.C, QKV = (k.H + 2 * k.Hkv) * k.D, HD = k.H * k.D;
    AttentionShape s{.H = k.H, .Hkv = k.Hkv, .D = k.D, .has_rope = !k.is_gpt2,
                           .rope = {10000.0f, {}}, .has_qk_norm = k.has_qk_norm,
                           .norm_eps = 1e-6f};
    if (k.llama3_rope) s.rope.scaling = {8.0f, 1.0f, 4.0f, 64};
    const Shape qkv_shape = k.is_gpt2 ? Shape{C, QKV} : Shape{QKV, C};
    const Shape out_shape = k.is_gpt2 ? Shape{HD, C} : Shape{C, HD};
    DeviceTensor x = random_f64({B, T, C}, 10);
    DeviceTensor wqkv = random_f64(qkv_shape, 11, 0.5f), bqkv = random_f64({QKV}, 12, 0.3f);
    DeviceTensor wout = random_f64(out_shape, 13, 0.5f), bout = random_f64({C}, 14, 0.3f);
    DeviceTensor q_norm = random_f64({k.D}, 15), k_norm = random_f64({k.D}, 16);
    auto maybe = [](bool present, const DeviceTensor& t) { return present ? Tensor(t) : Tensor{}; };
    const bool has_qkv_bias = k.is_gpt2 || k.qkv_bias;
    const AttentionWeights w{{wqkv, maybe(has_qkv_bias, bqkv), k.is_gpt2},
                             maybe(k.has_qk_norm, q_norm), maybe(k.has_qk_norm, k_norm),
                             {wout, maybe(k.is_gpt2, bout), k.is_gpt2}};

    DeviceTensor qkv_raw = zeros_f64({B, T, QKV}), qk_rstd = zeros_f64({B, T, k.H + k.Hkv}),
                 qkv = zeros_f64({B, T, QKV}), att = zeros_f64({B, T, HD}),
                 lse = zeros_f64({B, k.H, T}), y = zeros_f64({B, T, C});
    const AttentionSaved saved{maybe(k.has_qk_norm, qkv_raw), maybe(k.has_qk_norm, qk_rstd), qkv,
                               att, lse};
    const auto r = random_doubles(B * T * C, 17);
    auto loss = [&] {
        attention_forward(be, y, saved, x, w, s);
        return dot(y, r);
    };
    loss();

    DeviceTensor dqkv = zeros_f64({B, T, QKV}), dqkv_raw = zeros_f64({B, T, QKV}),
                 datt = zeros_f64({B, T, HD});
    DeviceTensor dx = zeros_f64({B, T, C}), dwqkv = zeros_f64(qkv_shape), dbqkv = zeros_f64({QKV}),
                 dwout = zeros_f64(out_shape), dbout = zeros_f64({C}), dq_norm = zeros_f64({k.D}),
                 dk_norm = zeros_f64({k.D});
    const AttentionWeights dw{{dwqkv, maybe(has_qkv_bias, dbqkv), k.is_gpt2},
                              maybe(k.has_qk_norm, dq_norm), maybe(k.has_qk_norm, dk_norm),
                              {dwout, maybe(k.is_gpt2, dbout), k.is_gpt2}};
    DeviceTensor dy = DeviceTensor::from(be, testing::random_normal(B * T * C, 17), {B, T, C},
                                         DType::F64);
    attention_backward(be, dx, dw, {dqkv, maybe(k.has_qk_norm, dqkv_raw), datt}, dy, x, saved, w,
                       s);

    EXPECT_LT(finite_difference_error(x, dx, loss), kTolerance) << "dx";
    EXPECT_LT(finite_difference_error(wqkv, dwqkv, loss, 60), kTolerance) << "dwqkv";
    EXPECT_LT(finite_difference_error(wout, dwout, loss), kTolerance) << "dwout";
    if (has_qkv_bias) EXPECT_LT(finite_difference_error(bqkv, dbqkv, loss), kTolerance) << "dbqkv";
    if (k.is_gpt2) EXPECT_LT(finite_difference_error(bout, dbout, loss), kTolerance) << "dbout";
    if (k.has_qk_norm) {
        EXPECT_LT(finite_difference_error(q_norm, dq_norm, loss), kTolerance) << "dq_norm";
        EXPECT_LT(finite_difference_error(k_norm, dk_norm, loss), kTolerance) << "dk_norm";
    }
}

INSTANTIATE_TEST_SUITE_P(
    Variants, AttentionGradients,
    ::testing::Values(AttentionCase{"Gpt2", 2, 2, 4, 8, true, false},
                      AttentionCase{"LlamaMha", 2, 2, 4, 8, false, false},
                      AttentionCase{"LlamaGqa", 4, 2, 6, 10, false, false},
                      AttentionCase{"Qwen3GqaQkNorm", 4, 2, 6, 10, false, true},
                      AttentionCase{"Qwen3MqaQkNorm", 4, 1, 4, 8, false, true},
                      AttentionCase{"Qwen2GqaQkvBias", 4, 2, 4, 16, false, false, true},
                      AttentionCase{"Llama3ScaledRope", 4, 2, 8, 12, false, false, false, true}),
    [](const auto& info) { return std::string(info.param.name); });

class MlpGradients : public ::testing::TestWithParam<MlpKind> {};

TEST_P(MlpGradients, MatchFiniteDifferences) {
    auto& be = reference_backend();
    const MlpKind kind = GetParam();
    const bool is_gelu = kind == MlpKind::Gelu;
    const int64_t N = 6, C = 8, F = 12, F_pre = is_gelu ? F : 2 * F;
    // GELU: Conv1D [in, out] with biases; SwiGLU: [out, in], gate and up stacked.
    const Shape in_shape = is_gelu ? Shape{C, F} : Shape{2 * F, C};
    const Shape out_shape = is_gelu ? Shape{F, C} : Shape{C, F};
    DeviceTensor x = random_f64({N, C}, 20), w_in = random_f64(in_shape, 21, 0.5f),
                 b_in = random_f64({F}, 22, 0.5f), w_out = random_f64(out_shape, 23, 0.5f),
                 b_out = random_f64({C}, 24, 0.5f);
    auto bias = [&](const DeviceTensor& t) { return is_gelu ? Tensor(t) : Tensor{}; };
    const MlpWeights w{kind, {w_in, bias(b_in), is_gelu}, {w_out, bias(b_out), is_gelu}};
    DeviceTensor pre = zeros_f64({N, F_pre}), act = zeros_f64({N, F}), y = zeros_f64({N, C});
    const auto r = random_doubles(N * C, 25);
    auto loss = [&] {
        mlp_forward(be, y, {pre, act}, x, w);
        return dot(y, r);
    };
    loss();
    DeviceTensor dx = zeros_f64({N, C}), dw_in = zeros_f64(in_shape), db_in = zeros_f64({F}),
                 dw_out = zeros_f64(out_shape), db_out = zeros_f64({C});
    DeviceTensor dact = zeros_f64({N, F}), dpre = zeros_f64({N, F_pre});
    DeviceTensor dy = DeviceTensor::from(be, testing::random_normal(N * C, 25), {N, C}, DType::F64);
    mlp_backward(be, dx, {kind, {dw_in, bias(db_in), is_gelu}, {dw_out, bias(db_out), is_gelu}},
                 {dact, dpre}, dy, x, {pre, act}, w);
    EXPECT_LT(finite_difference_error(x, dx, loss), kTolerance);
    EXPECT_LT(finite_difference_error(w_in, dw_in, loss, 60), kTolerance);
    EXPECT_LT(finite_difference_error(w_out, dw_out, loss), kTolerance);
    if (is_gelu) {
        EXPECT_LT(finite_difference_error(b_in, db_in, loss), kTolerance);
        EXPECT_LT(finite_difference_error(b_out, db_out, loss), kTolerance);
    }
}

INSTANTIATE_TEST_SUITE_P(Kinds, MlpGradients, ::testing::Values(MlpKind::Gelu, MlpKind::SwiGlu),
                         [](const auto& info) {
                             return info.param == MlpKind::Gelu ? "Gelu" : "SwiGlu";
                         });

TEST(LayerGradients, LmHeadWithCrossEntropyAndIgnoredTargets) {
    auto& be = reference_backend();
    const int64_t N = 6, C = 5, V = 11;
    const int32_t ignore = -100;
    DeviceTensor x = random_f64({N, C}, 30), weight = random_f64({V, C}, 31);
    DeviceTensor targets = DeviceTensor::from_ints(be, {3, ignore, 0, 10, 3, ignore}, {N});
    DeviceTensor logits = zeros_f64({N, V}), losses = zeros_f64({N}), lse = zeros_f64({N});
    const LmHeadSaved saved{logits, losses, lse};
    const float dloss = 0.375f;  // a mean over the 4 valid targets would be 1/4
    auto loss = [&] { return dloss * lm_head_forward(be, saved, x, weight, targets, ignore); };
    loss();
    // Ignored rows contribute nothing.
    const auto l = read_f64(losses);
    EXPECT_EQ(l[1], 0.0);
    EXPECT_EQ(l[5], 0.0);
    DeviceTensor dx = zeros_f64({N, C}), dweight = zeros_f64({V, C});
    lm_head_backward(be, dx, dweight, saved, x, weight, targets, {}, dloss, ignore);
    EXPECT_LT(finite_difference_error(x, dx, loss), kTolerance);
    EXPECT_LT(finite_difference_error(weight, dweight, loss), kTolerance);
}

}  // namespace
}  // namespace tandem::model

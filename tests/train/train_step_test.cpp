// The training step in double on the reference backend: its loss is the token-weighted mean over
// every micro-batch (and rank), its gradient that mean's, a 0-weight token is a dropped token,
// and batch sources other than token windows (prompt-masked examples) feed it.
#include "train/train_step.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "backend/registry.h"
#include "common/error_message.h"
#include "common/test_util.h"

namespace tandem::train {
namespace {

using model::kIgnoreIndex;
using model::Model;

backend::Backend& reference() { return backend::get_backend("reference"); }

model::ModelConfig tiny_llama() {
    model::ModelConfig c;
    c.family = model::Family::Llama;
    c.n_layers = 2;
    c.d_model = 12;
    c.n_heads = 4;
    c.n_heads_kv = 2;
    c.head_dim = 6;
    c.d_ffn = 10;
    c.vocab_size = 13;
    c.max_seq_len = 8;
    c.validate();
    return c;
}

// Weights well away from the init, so that every token's gradient is sizeable.
void randomise(Model& m, uint64_t seed) {
    m.init(seed);
    for (const auto& e : m.layout().entries()) {
        std::vector<float> v = testing::random_normal(e.numel(), seed + e.offset, 0.3f);
        if (e.role == model::ParamRole::Norm)
            for (float& x : v) x += 1.0f;
        m.load_param(e.name, v);
    }
}

std::vector<double> host_f64(Tensor t) {
    std::vector<double> out(t.numel());
    reference().copy_to_host(out.data(), t.data, t.bytes());
    return out;
}

double relative_difference(const std::vector<double>& a, const std::vector<double>& b) {
    double diff = 0, norm = 0;
    for (size_t i = 0; i < a.size(); ++i) {
        diff += (a[i] - b[i]) * (a[i] - b[i]);
        norm += b[i] * b[i];
    }
    return std::sqrt(diff / norm);
}

// The batches it was given, in order.
class ListSource final : public BatchSource {
public:
    explicit ListSource(std::vector<Batch> batches) : batches_(std::move(batches)) {}
    void next(Batch& batch) override { batch = batches_.at(next_++ % batches_.size()); }

private:
    std::vector<Batch> batches_;
    size_t next_ = 0;
};

std::vector<float> weights(std::initializer_list<float> w) { return w; }

Batch make_batch(int64_t B, int64_t T, std::vector<int32_t> tokens, std::vector<int32_t> targets,
                 std::vector<float> weights) {
    Batch b;
    b.B = B;
    b.T = T;
    b.tokens = std::move(tokens);
    b.targets = std::move(targets);
    b.loss_weights = std::move(weights);
    return b;
}

// Two ranks holding the same data: every sum over ranks is twice the local value.
class MirroredCommunicator final : public dist::Communicator {
public:
    int rank() const override { return 0; }
    int size() const override { return 2; }
    void all_reduce(Tensor x, dist::ReduceOp op) override {
        if (op != dist::ReduceOp::Sum) return;
        if (x.numel() > 3) ++n_large;  // gradient buckets, not the step's few sums
        for (int64_t i = 0; i < x.numel(); ++i) {
            if (x.dtype == DType::F64) x.as<double>()[i] *= 2;
            else x.as<float>()[i] *= 2;
        }
    }
    void reduce_scatter(Tensor, Tensor) override { FAIL() << "not used by the step"; }
    void all_gather(Tensor, Tensor) override { FAIL() << "not used by the step"; }
    void broadcast(Tensor, int) override {}
    void barrier() override {}
    int n_large = 0;
};

// A model, its optimizer (lr 0 leaves the weights as they are, so the gradient can be read
// after the step) and a guard.
struct Rig {
    Model model{tiny_llama(), reference(), DType::F64, 2, 8};
    AdamW optimizer{reference(), model.layout(), DType::F64, AdamWConfig{}};
    AnomalyGuard guard{AnomalyGuardConfig{}};
    Rig() { randomise(model, 7); }
};

// Micro-batch 1: 4 weighted targets (weight 4.5); micro-batch 2: 2 (weight 2, one target
// ignored). Their mean of means weights micro-batch 2's tokens twice as much as the step should.
const Batch kMicro1 = make_batch(1, 6, {1, 5, 7, 12, 0, 3}, {5, 7, 12, 0, 3, 8},
                                 {1.0f, 1.0f, 0.0f, 2.0f, 0.5f, 0.0f});
const Batch kMicro2 = make_batch(1, 6, {4, 4, 9, 2, 11, 6}, {4, 9, 2, 11, 6, kIgnoreIndex},
                                 {0.0f, 0.0f, 1.0f, 0.0f, 1.0f, 1.0f});

TEST(TrainStep, TwoMicroBatchesGiveTheTokenWeightedMeanAndGradientOfOneBigBatch) {
    Rig rig;
    // By hand: each micro-batch's weighted sum, from its own forward.
    const double mean1 = rig.model.forward(kMicro1.tokens, kMicro1.targets, 1, 6, kIgnoreIndex,
                                           kMicro1.loss_weights);
    const double sum1 = rig.model.loss_sum();
    EXPECT_DOUBLE_EQ(rig.model.weight_sum(), 4.5);
    const double mean2 = rig.model.forward(kMicro2.tokens, kMicro2.targets, 1, 6, kIgnoreIndex,
                                           kMicro2.loss_weights);
    const double sum2 = rig.model.loss_sum();
    EXPECT_DOUBLE_EQ(rig.model.weight_sum(), 2.0);  // the ignored target's weight does not count
    const double want_loss = (sum1 + sum2) / 6.5;

    // One big batch of both rows.
    Batch big = make_batch(2, 6, kMicro1.tokens, kMicro1.targets, kMicro1.loss_weights);
    big.tokens.insert(big.tokens.end(), kMicro2.tokens.begin(), kMicro2.tokens.end());
    big.targets.insert(big.targets.end(), kMicro2.targets.begin(), kMicro2.targets.end());
    big.loss_weights.insert(big.loss_weights.end(), kMicro2.loss_weights.begin(),
                            kMicro2.loss_weights.end());
    rig.model.zero_grad();
    const double big_loss =
        rig.model.forward(big.tokens, big.targets, 2, 6, kIgnoreIndex, big.loss_weights);
    rig.model.backward();
    const std::vector<double> big_grad = host_f64(rig.model.grads());
    EXPECT_NEAR(big_loss, want_loss, 1e-12 * want_loss);

    dist::LocalCommunicator comm;
    TrainStep step(rig.model, rig.optimizer, rig.guard, comm, 2);
    ListSource source({kMicro1, kMicro2});
    const StepResult r = step.run(source, 0.0);
    ASSERT_FALSE(r.anomaly.has_value()) << *r.anomaly;
    EXPECT_NEAR(r.loss, want_loss, 1e-12 * want_loss);
    EXPECT_DOUBLE_EQ(r.loss_weight, 6.5);
    EXPECT_EQ(r.n_tokens, 12);
    // Not the mean of the micro-batch means, which the step used to take.
    EXPECT_GT(std::abs(r.loss - 0.5 * (mean1 + mean2)), 1e-3);
    EXPECT_LT(relative_difference(host_f64(rig.model.grads()), big_grad), 1e-12);
    double norm = 0;
    for (double g : big_grad) norm += g * g;
    EXPECT_NEAR(r.grad_norm, std::sqrt(norm), 1e-12 * std::sqrt(norm));
}

// Each micro-batch's gradient is computed from zero and added to the earlier ones' in order, in
// f32, as the communicator adds the ranks' gradients (dist/host_reduce.h): so one rank with N
// micro-batches gives the bits of N ranks with one each (tests/dist/mpi/train_parity.sh).
// Accumulating inside the backward kernels, as the step did before, rounds differently.
TEST(TrainStep, MicroBatchGradientsAreEachFromZeroAndAddedInOrder) {
    backend::Backend& cpu = backend::get_backend("cpu");
    Model model(tiny_llama(), cpu, DType::F32, 2, 8);
    randomise(model, 9);
    const Batch micro3 = make_batch(2, 3, {3, 1, 4, 1, 5, 9}, {2, 6, 5, 3, 5, 8}, {});
    const std::vector<Batch> micro = {kMicro1, kMicro2, micro3};
    const double dloss = 1.0 / (4.5 + 2.0 + 6.0);
    std::vector<float> want(model.grads().numel()), g(want.size());
    for (size_t i = 0; i < micro.size(); ++i) {
        const Batch& b = micro[i];
        model.zero_grad();
        model.forward(b.tokens, b.targets, b.B, b.T, kIgnoreIndex, b.loss_weights);
        model.backward(dloss);
        cpu.copy_to_host(g.data(), model.grads().data, model.grads().bytes());
        for (size_t k = 0; k < want.size(); ++k) want[k] = i == 0 ? g[k] : want[k] + g[k];
    }

    AdamW optimizer{cpu, model.layout(), DType::F32, AdamWConfig{}};
    AnomalyGuard guard{AnomalyGuardConfig{}};
    dist::LocalCommunicator comm;
    TrainStep step(model, optimizer, guard, comm, 3);
    ListSource source(micro);
    const StepResult r = step.run(source, 0.0);
    ASSERT_FALSE(r.anomaly.has_value()) << *r.anomaly;
    cpu.copy_to_host(g.data(), model.grads().data, model.grads().bytes());
    for (size_t k = 0; k < want.size(); ++k) ASSERT_EQ(g[k], want[k]) << "gradient element " << k;
}

TEST(TrainStep, RanksAreWeighedByTheirTokensThroughTheCommunicator) {
    // Two ranks with the same data give the one-rank step: every rank divides by the weight of
    // both, and the all-reduced gradient adds their halves.
    Rig one, two;
    dist::LocalCommunicator local;
    MirroredCommunicator mirrored;
    TrainStep step1(one.model, one.optimizer, one.guard, local, 2);
    TrainStep step2(two.model, two.optimizer, two.guard, mirrored, 2);
    ListSource source1({kMicro1, kMicro2}), source2({kMicro1, kMicro2});
    const StepResult r1 = step1.run(source1, 0.0), r2 = step2.run(source2, 0.0);
    EXPECT_NEAR(r2.loss, r1.loss, 1e-14 * r1.loss);
    EXPECT_DOUBLE_EQ(r2.loss_weight, 2 * r1.loss_weight);
    EXPECT_EQ(r2.n_tokens, 2 * r1.n_tokens);
    EXPECT_LT(relative_difference(host_f64(two.model.grads()), host_f64(one.model.grads())), 1e-14);
    // The gradient went over in buckets as backward finished them (head, each block, embeddings),
    // each element once: a bucket reduced twice would have doubled twice.
    EXPECT_EQ(mirrored.n_large, 2 + two.model.config().n_layers);
}

TEST(TrainStep, ZeroWeightTokensAreDroppedTokens) {
    Rig rig;
    const std::vector<int32_t> tokens = {1, 5, 7, 12, 0, 3, 4, 9}, targets = {5, 7, 12, 0, 3, 4, 9, 2};
    // Zeros at the end of a row: the row cut short (attention is causal, so the earlier
    // positions never see the later ones).
    rig.model.zero_grad();
    const double masked = rig.model.forward(tokens, targets, 1, 8, kIgnoreIndex,
                                            weights({1, 1, 1, 1, 1, 0, 0, 0}));
    rig.model.backward();
    const std::vector<double> masked_grad = host_f64(rig.model.grads());
    rig.model.zero_grad();
    const double cut = rig.model.forward(std::span(tokens).first(5), std::span(targets).first(5), 1, 5);
    rig.model.backward();
    EXPECT_NEAR(masked, cut, 1e-13 * cut);
    EXPECT_LT(relative_difference(masked_grad, host_f64(rig.model.grads())), 1e-12);

    // Zeros in the middle: those targets ignored.
    const std::vector<float> mask = {1, 0, 1, 1, 0, 0, 1, 1};
    std::vector<int32_t> ignored = targets;
    for (size_t i = 0; i < mask.size(); ++i)
        if (mask[i] == 0) ignored[i] = kIgnoreIndex;
    rig.model.zero_grad();
    const double with_mask = rig.model.forward(tokens, targets, 1, 8, kIgnoreIndex, mask);
    rig.model.backward();
    const std::vector<double> mask_grad = host_f64(rig.model.grads());
    rig.model.zero_grad();
    const double with_ignore = rig.model.forward(tokens, ignored, 1, 8);
    rig.model.backward();
    EXPECT_NEAR(with_mask, with_ignore, 1e-13 * with_ignore);
    EXPECT_LT(relative_difference(mask_grad, host_f64(rig.model.grads())), 1e-13);
}

TEST(TrainStep, WeightedLossGradientMatchesFiniteDifferences) {
    Rig rig;
    const std::vector<int32_t> tokens = {1, 5, 7, 12, 0, 3, 4, 9}, targets = {5, 7, 12, 0, 3, 4, 9, 2};
    const std::vector<float> weights = {0.5f, 0, 2, 1, 0, 1.5f, 1, 0.25f};
    auto loss = [&] { return rig.model.forward(tokens, targets, 1, 8, kIgnoreIndex, weights); };
    rig.model.zero_grad();
    loss();
    rig.model.backward();
    // Central differences of the weighted mean over the flat parameters (every tensor sampled).
    std::vector<double> p = host_f64(rig.model.params());
    const std::vector<double> g = host_f64(rig.model.grads());
    const Tensor params = rig.model.params();
    const double h = 1e-5;
    double diff = 0, norm = 0;
    for (size_t i = 0; i < p.size(); i += p.size() / 60) {
        const double saved = p[i];
        p[i] = saved + h;
        reference().copy_to_device(params.data, p.data(), params.bytes());
        const double plus = loss();
        p[i] = saved - h;
        reference().copy_to_device(params.data, p.data(), params.bytes());
        const double minus = loss();
        p[i] = saved;
        const double numeric = (plus - minus) / (2 * h);
        diff += (g[i] - numeric) * (g[i] - numeric);
        norm += numeric * numeric;
    }
    ASSERT_GT(norm, 0);
    EXPECT_LT(std::sqrt(diff / norm), 1e-6);
}

TEST(TrainStep, BadLossWeightsAreErrorsNamingThePosition) {
    Rig rig;
    const std::vector<int32_t> tokens = {1, 5, 7}, targets = {5, 7, 12};
    EXPECT_NE(testing::error_message([&] {
                  rig.model.forward(tokens, targets, 1, 3, kIgnoreIndex, weights({1, -0.5f, 1}));
              }).find("loss weight -0.5 at position 1"),
              std::string::npos);
    EXPECT_NE(testing::error_message([&] {
                  rig.model.forward(tokens, targets, 1, 3, kIgnoreIndex, weights({1, 1, NAN}));
              }).find("at position 2 is not a finite number"),
              std::string::npos);
    EXPECT_NE(testing::error_message([&] {
                  rig.model.forward(tokens, targets, 1, 3, kIgnoreIndex, weights({1, 1}));
              }).find("got 2 loss weights for 1 x 3"),
              std::string::npos);
}

TEST(ExampleBatchSource, MasksPromptsPadsRowsAndFeedsTheStep) {
    // Example 0: prompt {1, 2}, completion {3, 4}; example 1: prompt {5}, completion {6, 7, 8,
    // 9, 10, 11} cut to T + 1 = 6 ids.
    ExampleBatchSource source({{{1, 2, 3, 4}, 2}, {{5, 6, 7, 8, 9, 10, 11}, 1}}, 2, 5, 0);
    Batch b;
    source.next(b);
    EXPECT_EQ(b.tokens, (std::vector<int32_t>{1, 2, 3, 0, 0, 5, 6, 7, 8, 9}));
    EXPECT_EQ(b.targets, (std::vector<int32_t>{2, 3, 4, kIgnoreIndex, kIgnoreIndex, 6, 7, 8, 9, 10}));
    EXPECT_EQ(b.loss_weights, (std::vector<float>{0, 1, 1, 0, 0, 1, 1, 1, 1, 1}));

    // Through the step: the mean over completion tokens of both micro-batches, which is the
    // same model's loss with the prompt targets ignored.
    Rig rig;
    std::vector<int32_t> ignored = b.targets;
    ignored[0] = kIgnoreIndex;
    rig.model.forward(b.tokens, ignored, 2, 5);
    const double sum = rig.model.loss_sum(), n = rig.model.weight_sum();
    EXPECT_EQ(n, 7);
    dist::LocalCommunicator comm;
    TrainStep step(rig.model, rig.optimizer, rig.guard, comm, 2);
    ExampleBatchSource again({{{1, 2, 3, 4}, 2}, {{5, 6, 7, 8, 9, 10, 11}, 1}}, 2, 5, 0);
    const StepResult r = step.run(again, 0.0);  // micro-batch 2 repeats micro-batch 1
    EXPECT_DOUBLE_EQ(r.loss_weight, 14);
    EXPECT_NEAR(r.loss, 2 * sum / 14, 1e-13);
}

TEST(ExampleBatchSource, BadExamplesAreErrorsNamingTheExample) {
    EXPECT_NE(testing::error_message([] { ExampleBatchSource({}, 1, 4); }).find("no examples"),
              std::string::npos);
    EXPECT_NE(testing::error_message([] { ExampleBatchSource({{{1, 2}, 0}, {{3}, 0}}, 1, 4); })
                  .find("example 1: has 1 ids"),
              std::string::npos);
    EXPECT_NE(testing::error_message([] { ExampleBatchSource({{{1, 2, 3}, 3}}, 1, 4); })
                  .find("example 0: n_prompt 3 leaves no completion"),
              std::string::npos);
}

TEST(WindowBatchSource, SplitsWindowsIntoInputsAndNextTokenTargets) {
    Batch b;
    split_windows(std::vector<int32_t>{1, 2, 3, 4, 5, 6, 7, 8}, 2, 3, b);
    EXPECT_EQ(b.tokens, (std::vector<int32_t>{1, 2, 3, 5, 6, 7}));
    EXPECT_EQ(b.targets, (std::vector<int32_t>{2, 3, 4, 6, 7, 8}));
    EXPECT_TRUE(b.loss_weights.empty());
}

}  // namespace
}  // namespace tandem::train

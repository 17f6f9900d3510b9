// Rollouts through the engine on a training model's weights: groups keyed by seed and sequence,
// the engine reading the weights in place, reference log-probabilities that agree with the
// training forward, and a step whose groups all have equal rewards leaving the weights alone.
#include "rl/rollout.h"

#include <gtest/gtest.h>

#include "backend/registry.h"
#include "dist/communicator.h"
#include "infer/generate.h"
#include "io/bpe_tokenizer.h"
#include "io/tokenizer_test_models.h"
#include "model/model.h"
#include "rl/evaluate.h"
#include "rl/grpo_loss.h"
#include "train/adamw.h"
#include "train/anomaly_guard.h"
#include "train/train_step.h"

namespace tandem::rl {
namespace {

struct TinyPolicy {
    // 256 byte tokens and <|endoftext|>: every text encodes, and a random model can say anything.
    io::BpeTokenizer tokenizer{io::testing_models::tiny_model({})};
    model::Model model{model::preset_config("tiny"), backend::get_backend("cpu"), DType::F32, 8, 64};
    std::unique_ptr<Task> task = make_task("addition:2");
    std::vector<Problem> problems;

    TinyPolicy() {
        model.init(5);
        for (uint64_t i = 0; i < 3; ++i) problems.push_back(task->problem(Split::Train, 0, i));
    }
    std::vector<Rollout> sample(infer::Engine& engine, uint64_t seed) {
        RolloutOptions o;
        o.group_size = 4;
        o.max_tokens = 12;
        o.sampling.seed = seed;
        return sample_rollouts(engine, tokenizer, *task, problems, o);
    }
};

TEST(Rollouts, GroupsAreSeededPerSequenceAndRepeatable) {
    TinyPolicy p;
    RolloutEngine engine(p.model.weights(), p.tokenizer, 12, 64);
    const std::vector<Rollout> a = p.sample(*engine.engine, 1), b = p.sample(*engine.engine, 1);
    ASSERT_EQ(a.size(), 12u);
    for (size_t i = 0; i < a.size(); ++i) {
        EXPECT_EQ(a[i].problem, int64_t(i / 4));
        EXPECT_EQ(a[i].completion, b[i].completion);  // same seed, same draws
        EXPECT_EQ(a[i].prompt, infer::encode_prompt(p.tokenizer, p.task->prompt(p.problems[i / 4])));
        EXPECT_FALSE(a[i].completion.empty());
        EXPECT_LE(a[i].completion.size(), 12u);
    }
    EXPECT_NE(a[0].completion, a[1].completion);  // sequences of a group draw differently
    EXPECT_NE(a[0].completion, p.sample(*engine.engine, 2)[0].completion);
}

TEST(Rollouts, TheEngineSamplesTheCurrentWeights) {
    TinyPolicy p;
    RolloutEngine engine(p.model.weights(), p.tokenizer, 12, 64);
    const std::vector<Rollout> before = p.sample(*engine.engine, 1);
    p.model.init(6);  // what an optimizer step does: the same buffer, new values
    const std::vector<Rollout> after = p.sample(*engine.engine, 1);
    int n_changed = 0;
    for (size_t i = 0; i < before.size(); ++i) n_changed += before[i].completion != after[i].completion;
    EXPECT_GT(n_changed, 6);
}

TEST(Rollouts, ReferenceLogprobsMatchTheTrainingForward) {
    TinyPolicy p;
    RolloutEngine engine(p.model.weights(), p.tokenizer, 12, 64);
    const std::vector<Rollout> rollouts = p.sample(*engine.engine, 3);
    infer::PagedForward reference(p.model.weights(), {.max_tokens_per_step = 64, .pages = {.n_pages = 4}});
    const std::vector<double> logp = completion_logprobs(reference, rollouts);
    size_t at = 0;
    for (const Rollout& r : rollouts) {
        std::vector<int32_t> tokens = r.prompt, targets;
        tokens.insert(tokens.end(), r.completion.begin(), r.completion.end());
        tokens.pop_back();
        for (size_t t = 0; t < tokens.size(); ++t)
            targets.push_back(t + 1 >= r.prompt.size() ? (t + 1 < r.prompt.size() + r.completion.size()
                                                              ? r.completion[t + 1 - r.prompt.size()]
                                                              : model::kIgnoreIndex)
                                                       : model::kIgnoreIndex);
        const int64_t T = int64_t(tokens.size());
        p.model.forward(tokens, targets, 1, T);
        std::vector<double> losses(T);
        p.model.token_losses(losses);
        for (size_t t = r.prompt.size() - 1; t < size_t(T); ++t)
            EXPECT_NEAR(logp[at++], -losses[t], 1e-4) << "position " << t;
    }
    EXPECT_EQ(at, logp.size());
}

TEST(Rollouts, EqualRewardsInEveryGroupLeaveTheWeightsUnchanged) {
    TinyPolicy p;
    const std::vector<float> before = p.model.save_param("model.layers.0.self_attn.q_proj.weight");
    train::AdamW adamw(p.model.backend(), p.model.layout(), DType::F32, {.weight_decay = 0});
    train::AnomalyGuard guard({});
    dist::LocalCommunicator comm;
    train::TrainStep step(p.model, adamw, guard, comm, 1);
    // One micro-batch of 2 rows; the rewards of the group are equal, so the advantages are 0.
    struct Source final : train::BatchSource {
        void next(train::Batch& b) override {
            b.resize(2, 6, true);
            for (int i = 0; i < 12; ++i) {
                b.tokens[i] = 40 + i;
                b.targets[i] = i % 6 >= 2 ? 50 + i : model::kIgnoreIndex;
                b.loss_weights[i] = i % 6 >= 2 ? 1.0f : 0.0f;
            }
        }
    } source;
    const std::vector<double> rewards = {1.0, 1.0};
    const std::vector<double> advantages = group_advantages(rewards, 2, AdvantageMode::Grpo);
    train::StepHooks hooks;
    hooks.before_backward = [&](int64_t, const train::Batch& b) {
        std::vector<double> logp(12);
        p.model.token_losses(logp);
        for (double& x : logp) x = -x;
        const GrpoTerms t = grpo_terms({.B = 2, .T = 6, .targets = b.targets, .logp = logp, .logp_old = logp,
                                        .advantages = advantages},
                                       {}, 1.0);
        p.model.set_loss_weights(t.weights);
        return t.loss_sum;
    };
    const train::StepResult r = step.run(source, 1e-2, hooks);
    EXPECT_EQ(r.grad_norm, 0.0);
    EXPECT_EQ(r.loss, 0.0);
    EXPECT_EQ(p.model.save_param("model.layers.0.self_attn.q_proj.weight"), before);
}

TEST(Evaluate, WilsonIntervalMatchesTheFormula) {
    // Reference values from the closed form (Wilson 1927), z = 1.96.
    const Interval none = wilson_interval(0, 10), half = wilson_interval(5, 10), all = wilson_interval(20, 20);
    EXPECT_EQ(none.low, 0.0);
    EXPECT_NEAR(none.high, 0.27754, 1e-5);
    EXPECT_NEAR(half.low, 0.23659, 1e-5);
    EXPECT_NEAR(half.high, 0.76341, 1e-5);
    EXPECT_NEAR(all.low, 0.83887, 1e-5);
    EXPECT_NEAR(all.high, 1.0, 1e-12);
    const Interval big = wilson_interval(250, 500);
    EXPECT_NEAR(big.high - big.low, 2 * 1.96 * std::sqrt(0.25 / 500), 1e-3);  // the normal limit
}

TEST(Evaluate, CountsHeldOutAnswers) {
    TinyPolicy p;
    RolloutEngine engine(p.model.weights(), p.tokenizer, 8, 64);
    EvalOptions o;
    o.n = 8;
    o.max_tokens = 8;
    const EvalResult r = evaluate_task(*engine.engine, p.tokenizer, *p.task, o);
    EXPECT_EQ(r.n, 8);
    EXPECT_EQ(r.n_correct, 0);  // a random model does not add
    EXPECT_EQ(r.interval.low, 0.0);
    ASSERT_EQ(r.problems.size(), 8u);
    for (const Problem& q : r.problems) EXPECT_EQ(split_of(q.key), Split::HeldOut);
    // Greedy: every run says the same.
    EXPECT_EQ(evaluate_task(*engine.engine, p.tokenizer, *p.task, o).rollouts[3].text, r.rollouts[3].text);
}

}  // namespace
}  // namespace tandem::rl

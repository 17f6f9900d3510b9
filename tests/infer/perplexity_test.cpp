// Perplexity against direct computation: with a fake model whose logits are a known function of
// the history, and with a real model on the reference backend, where the windows run through
// Model::forward give the same mean NLL; token_nll on hand-worked cases; every bad input is an
// Error naming the value.
#include "infer/perplexity.h"

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "backend/registry.h"
#include "common/test_util.h"
#include "core/error.h"
#include "fake_step_model.h"
#include "infer/paged_forward.h"
#include "model/model.h"

namespace tandem::infer {
namespace {

TEST(Perplexity, TokenNllOfHandWorkedLogits) {
    // Uniform over 5: -log(1/5). Logits {0, ln 3}: softmax {1/4, 3/4}.
    EXPECT_NEAR(token_nll(std::vector<float>(5, 2.5f), 3), std::log(5.0), 1e-12);
    const std::vector<float> two = {0.0f, float(std::log(3.0))};
    EXPECT_NEAR(token_nll(two, 0), std::log(4.0), 1e-7);
    EXPECT_NEAR(token_nll(two, 1), std::log(4.0 / 3.0), 1e-7);
    // Large logits do not overflow: the max is subtracted first.
    EXPECT_NEAR(token_nll(std::vector<float>{1000.0f, 1000.0f}, 1), std::log(2.0), 1e-12);
}

// exp(mean NLL) of the fake model's oracle over windows of ctx, computed without pages or steps.
PerplexityResult oracle_perplexity(const std::vector<int32_t>& tokens, int64_t ctx, int64_t V) {
    double sum = 0;
    int64_t n = 0;
    std::vector<float> logits(V);
    for (size_t start = 0; start < tokens.size(); start += ctx) {
        const size_t end = std::min(tokens.size(), start + ctx);
        for (size_t t = start + 1; t < end; ++t) {
            testing::oracle_logits(std::span(tokens).subspan(start, t - start), V, logits.data());
            double z = 0;
            for (float x : logits) z += std::exp(double(x));
            sum += std::log(z) - double(logits[tokens[t]]);
            ++n;
        }
    }
    return {.n_tokens = n, .nll = sum / n, .perplexity = std::exp(sum / n)};
}

TEST(Perplexity, MatchesTheOracleOverWindowsAndChunks) {
    testing::FakeStepModel model;  // vocab 257, context 64, 32 rows a step, 16 pages of 4
    for (int64_t n : {37, 21, 2, 100}) {
        const std::vector<int32_t> tokens = testing::random_ints(n, 11 + n, 0, 257);
        // ctx 10: windows 10, 10, ... and a short last one (21 = 10 + 10 + 1: a last window of
        // one token predicts nothing); chunk 4 splits windows mid-way.
        for (auto [ctx, chunk] : {std::pair<int64_t, int64_t>{10, 4}, {10, 32}, {64, 7}, {2, 1}}) {
            std::vector<PerplexityProgress> seen;
            const PerplexityResult got = perplexity(
                model, tokens, {.ctx = ctx, .chunk = chunk},
                [&](const PerplexityProgress& p) { seen.push_back(p); });
            const PerplexityResult want = oracle_perplexity(tokens, ctx, 257);
            EXPECT_EQ(got.n_tokens, want.n_tokens) << n << " tokens, ctx " << ctx;
            EXPECT_EQ(got.n_tokens, n - (n + ctx - 1) / ctx);  // each window but its first token
            EXPECT_NEAR(got.nll, want.nll, 1e-9 * want.nll) << n << " tokens, ctx " << ctx;
            EXPECT_NEAR(got.perplexity, std::exp(got.nll), 1e-12 * got.perplexity);
            ASSERT_FALSE(seen.empty());
            EXPECT_EQ(seen.back().n_total, n);
            EXPECT_GE(seen.back().n_done, n - 1);  // a skipped one-token window is not run
            for (const auto& step : model.steps)
                EXPECT_LE(step.size(), chunk) << "a step of more rows than the chunk";
            model.steps.clear();
        }
    }
}

TEST(Perplexity, EqualsExpOfMeanNllFromModelForwardOnTheReferenceBackend) {
    for (const char* name : {"qwen3-tiny", "gpt2-124m"}) {
        model::ModelConfig c = model::preset_config(name);
        if (c.family == model::Family::Gpt2) {
            c.n_layers = 2, c.d_model = 32, c.n_heads = 4, c.n_heads_kv = 4, c.head_dim = 8;
            c.d_ffn = 64, c.vocab_size = 97;
        }
        c.max_seq_len = 24;
        backend::Backend& be = backend::get_backend("reference");
        model::Model full(c, be, DType::F64, 1, c.max_seq_len);
        full.init(9);
        const int64_t V = c.vocab_size, ctx = 24;
        const std::vector<int32_t> tokens = testing::random_ints(61, 4, 0, int32_t(V));

        // Directly: each window through Model::forward, log-softmax of its f64 logits.
        double sum = 0;
        int64_t n = 0;
        for (size_t start = 0; start < tokens.size(); start += ctx) {
            const int64_t len = std::min<int64_t>(ctx, int64_t(tokens.size() - start));
            full.forward(std::span(tokens).subspan(start, len), {}, 1, len);
            std::vector<double> logits(len * V);
            be.copy_to_host(logits.data(), full.logits().data, logits.size() * sizeof(double));
            for (int64_t t = 0; t + 1 < len; ++t) {
                double max = -INFINITY, z = 0;
                for (int64_t v = 0; v < V; ++v) max = std::max(max, logits[t * V + v]);
                for (int64_t v = 0; v < V; ++v) z += std::exp(logits[t * V + v] - max);
                sum += std::log(z) + max - logits[t * V + tokens[start + t + 1]];
                ++n;
            }
        }
        PagedForward paged(full.weights(), {.max_tokens_per_step = 8,
                                            .pages = {.n_pages = 6, .page_size = 4},
                                            .kv_dtype = DType::F64,
                                            .logit_rows_per_pass = 3});
        const PerplexityResult got = perplexity(paged, tokens, {.ctx = ctx});
        EXPECT_EQ(got.n_tokens, n) << name;
        // Paged logits come back as f32: relative rounding 6e-8 per logit.
        EXPECT_NEAR(got.nll, sum / n, 1e-6 * sum / n) << name;
        EXPECT_NEAR(got.perplexity, std::exp(sum / n), 1e-6 * std::exp(sum / n)) << name;
        EXPECT_GT(got.perplexity, 1.0);
    }
}

void expect_error(const std::function<void()>& run, const std::string& fragment) {
    try {
        run();
        ADD_FAILURE() << "no error, expected one containing: " << fragment;
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
    }
}

TEST(Perplexity, RefusesBadInputNamingTheValue) {
    testing::FakeStepModel model;  // context 64, 32 rows a step, 16 pages of 4
    const std::vector<int32_t> tokens = {1, 2, 3, 4};
    expect_error([&] { perplexity(model, std::vector<int32_t>{5}); },
                 "the text is 1 token(s) long, but scoring needs at least 2");
    expect_error([&] { perplexity(model, std::vector<int32_t>{}); }, "the text is 0 token(s)");
    expect_error([&] { perplexity(model, tokens, {.ctx = 65}); }, "ctx 65 is outside [2, 64]");
    expect_error([&] { perplexity(model, tokens, {.ctx = 1}); }, "ctx 1 is outside [2, 64]");
    expect_error([&] { perplexity(model, tokens, {.chunk = 33}); }, "chunk 33 is outside [1, 32]");
    expect_error([&] { perplexity(model, std::vector<int32_t>{1, 257, 3}); },
                 "token 257 at index 1 is outside the model's vocabulary [0, 257)");
    testing::FakeStepModel few({.pages = {3, 4}});
    expect_error([&] { perplexity(few, tokens, {.ctx = 13}); },
                 "a window of 13 tokens needs 4 pages of 4 positions, but the model's cache has 3");
    EXPECT_EQ(default_ctx(model.max_positions()), 64);
    EXPECT_EQ(default_ctx(40960), kPerplexityCtxCap);
}

}  // namespace
}  // namespace tandem::infer

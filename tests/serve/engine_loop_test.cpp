// The engine thread over the infer tests' fake model (which reads every sequence back through its
// pages): requests submitted from many threads each get exactly their own greedy tokens, the
// sequence bound refuses with 429, a cancel ends a stream and empties the pool, a model that
// throws ends every stream with the reason and the next request runs, and a stopped loop refuses;
// the prefix cache's series count a repeated prompt.
#include "serve/engine_loop.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "common/hf_dir_util.h"
#include "infer/fake_step_model.h"
#include "serve/api_error.h"

namespace tandem::serve {
namespace {

using testing::FakeLimits;
using testing::FakeStepModel;

const io::BpeTokenizer& tokenizer() {
    static const io::BpeTokenizer t(testing::byte_tokenizer());
    return t;
}

// The fake model, made to throw from run() while `failing` is set, and to take `step_ms` a step.
class FlakyModel : public FakeStepModel {
   public:
    using FakeStepModel::FakeStepModel;
    std::span<const float> run(const infer::StepBatch& b) override {
        if (failing) throw Error("device lost (a test's failure)");
        std::this_thread::sleep_for(std::chrono::milliseconds(step_ms));
        return FakeStepModel::run(b);
    }
    std::atomic<bool> failing{false};
    std::atomic<int> step_ms{0};
};

constexpr int64_t kVocab = 128;  // ASCII ids only
const FakeLimits kLimits{.vocab = kVocab,
                         .max_positions = 64,
                         .max_tokens_per_step = 64,
                         .pages = {.n_pages = 64, .page_size = 4}};

infer::Request greedy(std::vector<int32_t> prompt, int64_t max_tokens) {
    infer::Request r{.prompt = std::move(prompt), .max_tokens = max_tokens};
    r.sampling.temperature = 0;
    return r;
}

// Every event of a stream until its end: the tokens per sequence and the finish reasons.
struct Gathered {
    std::vector<std::vector<int32_t>> tokens;
    std::vector<infer::FinishReason> finish;
};
Gathered gather(RequestStream& s, int64_t n) {
    Gathered g{std::vector<std::vector<int32_t>>(size_t(n)),
               std::vector<infer::FinishReason>(size_t(n), infer::FinishReason::None)};
    std::vector<infer::SequenceEvent> events;
    while (s.wait(events)) {
        for (const infer::SequenceEvent& e : events) {
            for (const infer::SampledToken& t : e.tokens) g.tokens[e.sequence].push_back(t.id);
            if (e.finish != infer::FinishReason::None) g.finish[e.sequence] = e.finish;
        }
        events.clear();
    }
    return g;
}

TEST(EngineLoop, EachRequestGetsItsOwnTokensFromManyThreads) {
    FlakyModel model(kLimits);
    infer::Engine engine(model, tokenizer(), {.max_seqs = 6});
    ServerMetrics metrics;
    EngineLoop loop(engine, metrics, 1000, kLimits.pages.n_pages);
    std::atomic<int> wrong{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 6; ++t)
        threads.emplace_back([&, t] {
            for (int i = 0; i < 5; ++i) {
                const std::vector<int32_t> prompt = {int32_t(65 + t), int32_t(97 + i), 32};
                auto stream = loop.submit(greedy(prompt, 6 + i));
                const Gathered g = gather(*stream, 1);
                if (g.tokens[0] != testing::oracle_greedy(prompt, 6 + i, kVocab) ||
                    g.finish[0] != infer::FinishReason::Length)
                    ++wrong;
            }
        });
    for (std::thread& th : threads) th.join();
    EXPECT_EQ(wrong, 0);
    EXPECT_EQ(loop.n_sequences(), 0);
    EXPECT_EQ(metrics.generated_tokens.value(), uint64_t(6 * (6 + 7 + 8 + 9 + 10)));
    EXPECT_EQ(metrics.prompt_tokens.value(), uint64_t(6 * 5 * 3));
    EXPECT_EQ(metrics.time_to_first_token.snapshot().count, uint64_t(30));
}

TEST(EngineLoop, ThePrefixCacheServesARepeatedPromptAndCountsIt) {
    FlakyModel model(kLimits);
    infer::Engine engine(model, tokenizer(), {.max_seqs = 6, .prefix_cache = true});
    ServerMetrics metrics;
    EngineLoop loop(engine, metrics, 1000, kLimits.pages.n_pages);
    std::vector<int32_t> prompt;
    for (int i = 0; i < 18; ++i) prompt.push_back(int32_t(40 + i));
    for (int round = 0; round < 3; ++round) {
        auto stream = loop.submit(greedy(prompt, 5));
        EXPECT_EQ(gather(*stream, 1).tokens[0], testing::oracle_greedy(prompt, 5, kVocab));
    }
    // Rounds 2 and 3 take all of the prompt but its last token from the cache (4 whole pages,
    // and position 16 from a copy of the fifth, which round 1 filled); the pages
    // stay cached once nobody holds them, and none is in use (the gauges follow the last event).
    for (int i = 0; i < 200 && metrics.kv_pages_in_use.value() != 0; ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    EXPECT_EQ(metrics.prompt_tokens_cached.value(), uint64_t(2 * 17));
    EXPECT_GT(metrics.kv_pages_cached.value(), 0);
    EXPECT_EQ(metrics.kv_pages_in_use.value(), 0);
}

TEST(EngineLoop, RefusesPastItsSequenceBoundWith429) {
    FlakyModel model(kLimits);
    infer::Engine engine(model, tokenizer());
    ServerMetrics metrics;
    EngineLoop loop(engine, metrics, 3, kLimits.pages.n_pages);
    infer::Request two = greedy({70, 71}, 40);
    two.n = 2;
    auto first = loop.submit(two);
    try {
        loop.submit(two);
        ADD_FAILURE() << "a request past the bound was admitted";
    } catch (const ApiError& e) {
        EXPECT_EQ(e.status, 429);
        EXPECT_EQ(e.code, "queue_full");
    }
    gather(*first, 2);
    // Alone, a request larger than the bound still runs: the bound is on crowds.
    infer::Request four = greedy({70, 71}, 3);
    four.n = 4;
    const Gathered g = gather(*loop.submit(four), 4);
    for (int s = 0; s < 4; ++s) EXPECT_EQ(g.finish[s], infer::FinishReason::Length) << s;
}

TEST(EngineLoop, CancelEndsTheStreamAndReturnsThePages) {
    FlakyModel model(kLimits);
    infer::Engine engine(model, tokenizer());
    ServerMetrics metrics;
    EngineLoop loop(engine, metrics, 100, kLimits.pages.n_pages);
    model.step_ms = 2;  // 60 tokens take 120 ms: the cancel lands long before the end
    auto stream = loop.submit(greedy({80, 81, 82}, 60));
    std::vector<infer::SequenceEvent> events;
    ASSERT_TRUE(stream->wait(events));
    loop.cancel(*stream);
    const Gathered g = gather(*stream, 1);
    EXPECT_EQ(g.finish[0], infer::FinishReason::Cancelled);
    EXPECT_LT(g.tokens[0].size(), 60u);
    // The gauges follow the step after the cancel.
    for (int i = 0; i < 200 && metrics.kv_pages_in_use.value() != 0; ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    EXPECT_EQ(metrics.kv_pages_in_use.value(), 0);
    EXPECT_EQ(metrics.kv_pages_total.value(), double(kLimits.pages.n_pages));
    EXPECT_EQ(engine.scheduler().pool().n_free(), kLimits.pages.n_pages);
}

TEST(EngineLoop, AModelThatThrowsEndsEveryStreamWithTheReason) {
    FlakyModel model(kLimits);
    infer::Engine engine(model, tokenizer());
    ServerMetrics metrics;
    EngineLoop loop(engine, metrics, 100, kLimits.pages.n_pages);
    model.failing = true;
    auto a = loop.submit(greedy({65, 66}, 10));
    auto b = loop.submit(greedy({67, 68}, 10));
    for (RequestStream* s : {a.get(), b.get()}) {
        gather(*s, 1);
        EXPECT_NE(s->failure().find("device lost"), std::string::npos) << s->failure();
    }
    model.failing = false;
    const Gathered g = gather(*loop.submit(greedy({69, 70}, 5)), 1);
    EXPECT_EQ(g.tokens[0], testing::oracle_greedy({69, 70}, 5, kVocab));
}

TEST(EngineLoop, AStoppedLoopRefusesWith503) {
    FlakyModel model(kLimits);
    infer::Engine engine(model, tokenizer());
    ServerMetrics metrics;
    EngineLoop loop(engine, metrics, 100, kLimits.pages.n_pages);
    model.step_ms = 2;
    auto running = loop.submit(greedy({65, 66}, 40));
    loop.stop();  // cancels what runs
    EXPECT_EQ(gather(*running, 1).finish[0], infer::FinishReason::Cancelled);
    try {
        loop.submit(greedy({65}, 1));
        ADD_FAILURE() << "a stopped loop admitted a request";
    } catch (const ApiError& e) {
        EXPECT_EQ(e.status, 503);
    }
}

}  // namespace
}  // namespace tandem::serve

// The engine over a fake model that reads every sequence back through its pages: each request's
// output is the same alone as in a crowd that joins and leaves mid-batch, with a full pool and
// preemption, under per-step limits; cancellation, n samples, stop ids and strings, max_tokens,
// the context's end, log-probabilities, submission from another thread, and malformed requests.
#include "infer/engine.h"

#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <map>
#include <thread>
#include <utility>

#include "backend/registry.h"
#include "common/error_message.h"
#include "common/hf_dir_util.h"
#include "fake_step_model.h"
#include "infer/paged_forward.h"
#include "model/config.h"
#include "model/weights.h"

namespace tandem::infer {
namespace {

using testing::error_message;
using testing::FakeLimits;
using testing::FakeStepModel;

// Token ids below 128 only: their text is plain ASCII, one byte per token.
constexpr int64_t kVocab = 128;

const io::BpeTokenizer& tokenizer() {
    static const io::BpeTokenizer t(testing::byte_tokenizer());
    return t;
}

FakeLimits limits(int64_t n_pages = 64, int64_t max_positions = 64) {
    return {.vocab = kVocab, .max_positions = max_positions, .max_tokens_per_step = 16,
            .pages = {.n_pages = n_pages, .page_size = 4}};
}

std::vector<int32_t> prompt_of(int seed, int len) {
    std::vector<int32_t> p;
    for (int i = 0; i < len; ++i) p.push_back(int32_t(testing::fake_mix(seed * 977 + i) % kVocab));
    return p;
}

Request greedy(std::vector<int32_t> prompt, int64_t max_tokens) {
    Request r{.prompt = std::move(prompt), .max_tokens = max_tokens};
    r.sampling.temperature = 0;
    return r;
}

std::vector<int32_t> ids(const Completion& c) {
    std::vector<int32_t> out;
    for (const SampledToken& t : c.tokens) out.push_back(t.id);
    return out;
}

std::string text_of(const std::vector<int32_t>& ids) {
    return tokenizer().decode(ids);
}

std::vector<Completion> alone(const Request& r, FakeLimits l = limits()) {
    FakeStepModel model(l);
    Engine engine(model, tokenizer());
    return engine.run_to_completion({r})[0];
}

// A crowd of greedy and sampled requests, some with n > 1.
std::vector<Request> crowd() {
    std::vector<Request> rs;
    for (int i = 0; i < 14; ++i) {
        Request r = greedy(prompt_of(i, 1 + (i * 5) % 17), 4 + (i * 3) % 11);
        if (i % 3 == 1) {
            r.sampling.temperature = 0.8f;
            r.sampling.seed = 100 + i;
            r.n = 1 + i % 3;
        }
        rs.push_back(r);
    }
    return rs;
}

// Submits the crowd over several steps while earlier requests run, and returns the completions.
std::vector<std::vector<Completion>> in_crowd(const std::vector<Request>& rs, Engine& engine) {
    std::vector<std::vector<Completion>> out(rs.size());
    std::vector<RequestId> ids;
    size_t next = 0;
    while (next < rs.size() || engine.has_work()) {
        for (int k = 0; k < 2 && next < rs.size(); ++k) {  // two join before each step
            ids.push_back(engine.submit(rs[next]));
            out[next++].resize(rs[ids.size() - 1].n);
        }
        for (const SequenceEvent& e : engine.step()) {
            Completion& c = out[e.request][e.sequence];
            c.tokens.insert(c.tokens.end(), e.tokens.begin(), e.tokens.end());
            c.text += e.text;
            if (e.finish != FinishReason::None) c.finish = e.finish;
        }
    }
    return out;
}

void expect_same(const std::vector<Completion>& a, const std::vector<Completion>& b,
                 const std::string& what) {
    ASSERT_EQ(a.size(), b.size()) << what;
    for (size_t s = 0; s < a.size(); ++s) {
        EXPECT_EQ(ids(a[s]), ids(b[s])) << what << " sequence " << s;
        EXPECT_EQ(a[s].text, b[s].text) << what << " sequence " << s;
        EXPECT_EQ(a[s].finish, b[s].finish) << what << " sequence " << s;
    }
}

TEST(Engine, EveryRequestGivesTheSameOutputAloneAndInACrowd) {
    const std::vector<Request> rs = crowd();
    FakeStepModel model(limits());
    Engine engine(model, tokenizer(), {.max_seqs = 5, .prefill_chunk = 3});
    const auto together = in_crowd(rs, engine);
    for (size_t i = 0; i < rs.size(); ++i) {
        expect_same(alone(rs[i]), together[i], "request " + std::to_string(i));
        if (rs[i].sampling.temperature == 0)
            EXPECT_EQ(ids(together[i][0]),
                      testing::oracle_greedy(rs[i].prompt, rs[i].max_tokens, kVocab));
    }
    EXPECT_EQ(engine.scheduler().pool().n_free(), 64);
}

TEST(Engine, AFullPoolMakesRequestsWaitAndPreemptionRecomputesTheSameOutput) {
    // 12 pages of 4 positions: a few sequences at a time, and growing ones push out the newest.
    const std::vector<Request> rs = crowd();
    FakeStepModel model(limits(12));
    Engine engine(model, tokenizer(), {.max_seqs = 8, .prefill_chunk = 8});
    const auto together = in_crowd(rs, engine);
    for (size_t i = 0; i < rs.size(); ++i)
        expect_same(alone(rs[i]), together[i], "request " + std::to_string(i));
    EXPECT_GT(engine.stats().n_preemptions, 0);
    EXPECT_EQ(engine.scheduler().pool().n_free(), 12);
}

TEST(Engine, StepsKeepTheTokenBudgetAndThePrefillChunk) {
    FakeStepModel model(limits());
    Engine engine(model, tokenizer(), {.max_seqs = 8, .max_tokens_per_step = 7, .prefill_chunk = 3});
    std::vector<Request> rs;
    for (int i = 0; i < 6; ++i) rs.push_back(greedy(prompt_of(i + 30, 10), 5));
    const auto out = engine.run_to_completion(rs);
    for (size_t i = 0; i < rs.size(); ++i)
        EXPECT_EQ(ids(out[i][0]), testing::oracle_greedy(rs[i].prompt, 5, kVocab));
    for (const StepBatch& b : model.steps) {
        EXPECT_LE(b.size(), 7);
        std::vector<int64_t> rows(b.n_seqs, 0);
        for (int32_t s : b.seq_index) ++rows[s];
        for (int64_t n : rows) EXPECT_LE(n, 3);
    }
    const std::string m = error_message([&] {
        Engine(model, tokenizer(), {.max_tokens_per_step = 17});
    });
    EXPECT_NE(m.find("max_tokens_per_step is 17 but the model runs at most 16"), std::string::npos)
        << m;
}

TEST(Engine, CancellationEndsWaitingAndRunningRequestsAndFreesTheirPages) {
    FakeStepModel model(limits(16));
    Engine engine(model, tokenizer(), {.max_seqs = 2});
    const RequestId a = engine.submit(greedy(prompt_of(1, 9), 40));
    const RequestId b = engine.submit(greedy(prompt_of(2, 9), 40));
    const RequestId c = engine.submit(greedy(prompt_of(3, 9), 40));  // waits: max_seqs = 2
    for (int i = 0; i < 3; ++i) engine.step();
    EXPECT_EQ(engine.scheduler().n_running(), 2);
    EXPECT_EQ(engine.scheduler().n_waiting(), 1);
    const int64_t free_before = engine.scheduler().pool().n_free();
    engine.cancel(b);
    engine.cancel(c);
    engine.cancel(12345);  // unknown: ignored
    std::vector<std::pair<RequestId, FinishReason>> finished;
    for (const SequenceEvent& e : engine.step())
        if (e.finish != FinishReason::None) finished.emplace_back(e.request, e.finish);
    EXPECT_EQ(finished, (std::vector<std::pair<RequestId, FinishReason>>{
                            {b, FinishReason::Cancelled}, {c, FinishReason::Cancelled}}));
    EXPECT_GT(engine.scheduler().pool().n_free(), free_before - 1);  // b's pages came back
    EXPECT_EQ(engine.scheduler().n_running(), 1);
    EXPECT_EQ(engine.scheduler().n_waiting(), 0);
    engine.cancel(a);
    engine.step();
    EXPECT_FALSE(engine.has_work());
    EXPECT_EQ(engine.scheduler().pool().n_free(), 16);
    // A request cancelled before its first step never runs.
    const int64_t steps = int64_t(model.steps.size());
    const RequestId d = engine.submit(greedy(prompt_of(4, 5), 5));
    engine.cancel(d);
    const auto events = engine.step();
    ASSERT_EQ(events.size(), 1u);
    EXPECT_EQ(events[0].finish, FinishReason::Cancelled);
    EXPECT_EQ(int64_t(model.steps.size()), steps);
}

TEST(Engine, NSamplesDifferAndRepeatWithTheSeed) {
    Request r{.prompt = prompt_of(7, 6), .max_tokens = 12, .n = 4};
    r.sampling.temperature = 1.0f;
    r.sampling.seed = 42;
    const auto first = alone(r);
    ASSERT_EQ(first.size(), 4u);
    for (size_t i = 0; i < 4; ++i)
        for (size_t j = i + 1; j < 4; ++j) EXPECT_NE(ids(first[i]), ids(first[j])) << i << " " << j;
    expect_same(first, alone(r), "the same seed");
    r.sampling.seed = 43;
    EXPECT_NE(ids(alone(r)[0]), ids(first[0]));
}

TEST(Engine, StopIdsEndASequenceWithoutReportingTheStopToken) {
    const std::vector<int32_t> prompt = prompt_of(9, 5);
    const auto expected = testing::oracle_greedy(prompt, 10, kVocab);
    Request r = greedy(prompt, 10);
    r.stop_ids = {expected[3]};
    const auto first_stop = std::find(expected.begin(), expected.end(), expected[3]);
    const std::vector<int32_t> before(expected.begin(), first_stop);
    const auto out = alone(r);
    EXPECT_EQ(ids(out[0]), before);
    EXPECT_EQ(out[0].text, text_of(before));
    EXPECT_EQ(out[0].finish, FinishReason::Stop);
}

TEST(Engine, StopStringsEndTheTextRightBeforeThem) {
    const std::vector<int32_t> prompt = prompt_of(11, 5);
    const auto expected = testing::oracle_greedy(prompt, 12, kVocab);
    const std::string full = text_of(expected);
    // Two tokens' text in the middle: the stop string spans a token boundary.
    const std::string stop = full.substr(5, 2);
    Request r = greedy(prompt, 12);
    r.stop = {"never appears \x01\x02\x03", stop};
    const auto out = alone(r);
    EXPECT_EQ(out[0].text, full.substr(0, full.find(stop)));
    EXPECT_EQ(out[0].finish, FinishReason::Stop);
    EXPECT_LE(out[0].tokens.size(), 7u);
}

TEST(Engine, MaxTokensAndTheContextEndSequences) {
    const auto out = alone(greedy(prompt_of(13, 4), 6));
    EXPECT_EQ(out[0].tokens.size(), 6u);
    EXPECT_EQ(out[0].finish, FinishReason::Length);
    EXPECT_EQ(out[0].text, text_of(ids(out[0])));

    const auto none = alone(greedy(prompt_of(13, 4), 0));
    EXPECT_TRUE(none[0].tokens.empty());
    EXPECT_EQ(none[0].finish, FinishReason::Length);

    // A context of 20: a prompt of 15 runs positions 15..19 and samples the token at 20.
    const auto ctx = alone(greedy(prompt_of(13, 15), 50), limits(64, 20));
    EXPECT_EQ(ctx[0].tokens.size(), 6u);
    EXPECT_EQ(ctx[0].finish, FinishReason::Context);
    EXPECT_EQ(ids(ctx[0]), testing::oracle_greedy(prompt_of(13, 15), 6, kVocab));
}

TEST(Engine, ReportsLogprobsOfTheModelsLogits) {
    const std::vector<int32_t> prompt = prompt_of(17, 4);
    Request r = greedy(prompt, 3);
    r.sampling.logprobs = true;
    r.sampling.top_logprobs = 2;
    const auto out = alone(r);
    std::vector<int32_t> history = prompt;
    std::vector<float> logits(kVocab);
    for (const SampledToken& t : out[0].tokens) {
        testing::oracle_logits(history, kVocab, logits.data());
        const float top = *std::max_element(logits.begin(), logits.end());
        double z = 0;
        for (float l : logits) z += std::exp(double(l) - top);
        const double want = logits[t.id] - top - std::log(z);
        EXPECT_NEAR(t.logprob, want, 1e-4);
        ASSERT_EQ(t.top.size(), 2u);
        EXPECT_EQ(t.top[0].id, t.id);  // greedy: the chosen token is the most likely
        history.push_back(t.id);
    }
}

TEST(Engine, AcceptsRequestsFromAnotherThreadWhileStepping) {
    FakeStepModel model(limits(24));
    Engine engine(model, tokenizer(), {.max_seqs = 4});
    std::vector<Request> rs;
    for (int i = 0; i < 20; ++i) rs.push_back(greedy(prompt_of(i + 60, 3 + i % 7), 3 + i % 5));
    std::vector<RequestId> ids_of(rs.size());
    std::atomic<bool> done{false};
    std::thread producer([&] {
        for (size_t i = 0; i < rs.size(); ++i) {
            ids_of[i] = engine.submit(rs[i]);
            std::this_thread::yield();
        }
        done = true;
    });
    std::map<RequestId, std::vector<int32_t>> got;
    while (!done || engine.has_work())
        for (const SequenceEvent& e : engine.step())
            for (const SampledToken& t : e.tokens) got[e.request].push_back(t.id);
    producer.join();
    for (const SequenceEvent& e : engine.step())  // anything submitted after the last check
        for (const SampledToken& t : e.tokens) got[e.request].push_back(t.id);
    engine.run([&](const SequenceEvent& e) {
        for (const SampledToken& t : e.tokens) got[e.request].push_back(t.id);
    });
    for (size_t i = 0; i < rs.size(); ++i)
        EXPECT_EQ(got[ids_of[i]], testing::oracle_greedy(rs[i].prompt, rs[i].max_tokens, kVocab));
}

// The tiny preset's random weights on the cpu backend (f32), and PagedForwards over them.
struct TinyWeights {
    model::Weights weights;
    explicit TinyWeights(uint64_t seed) : weights(config(), backend::get_backend("cpu"), DType::F32) {
        weights.init(seed);
    }
    static model::ModelConfig config() {
        model::ModelConfig c = model::preset_config("tiny");
        c.max_seq_len = 64;
        return c;
    }
    std::unique_ptr<PagedForward> forward(int64_t n_pages) const {
        return std::make_unique<PagedForward>(
            weights, PagedForwardOptions{.max_tokens_per_step = 24,
                                         .pages = {.n_pages = n_pages, .page_size = 4}});
    }
};

// The same over real weights: PagedForward on the cpu backend (f32), a pool small enough to
// preempt, prompts chunked differently in the crowd than alone. Greedy and sampled alike.
TEST(Engine, OverPagedForwardACrowdWithPreemptionGivesWhatEachGivesAlone) {
    const TinyWeights tiny(11);
    const std::vector<Request> rs = crowd();
    auto crowded = tiny.forward(12);
    Engine engine(*crowded, tokenizer(), {.max_seqs = 8, .prefill_chunk = 5});
    const auto together = in_crowd(rs, engine);
    EXPECT_GT(engine.stats().n_preemptions, 0);
    for (size_t i = 0; i < rs.size(); ++i) {
        auto model = tiny.forward(64);
        Engine alone(*model, tokenizer());
        expect_same(alone.run_to_completion({rs[i]})[0], together[i], "request " + std::to_string(i));
    }
}

// The crowd again, each prompt behind one shared system prompt, some asked twice.
std::vector<Request> crowd_with_shared_prefixes() {
    const std::vector<int32_t> system = prompt_of(99, 9);
    std::vector<Request> rs = crowd();
    for (Request& r : rs) r.prompt.insert(r.prompt.begin(), system.begin(), system.end());
    rs.push_back(rs[3]);
    rs.push_back(rs[4]);
    return rs;
}

TEST(Engine, OverPagedForwardThePrefixCacheGivesWhatEachGivesAloneWithoutIt) {
    const TinyWeights tiny(12);
    const std::vector<Request> rs = crowd_with_shared_prefixes();
    auto crowded = tiny.forward(20);
    Engine engine(*crowded, tokenizer(), {.max_seqs = 8, .prefill_chunk = 5, .prefix_cache = true});
    const auto together = in_crowd(rs, engine);
    EXPECT_GT(engine.stats().n_prefix_hits, 100);
    EXPECT_EQ(engine.scheduler().pool().n_free(), 20);
    for (size_t i = 0; i < rs.size(); ++i) {
        auto model = tiny.forward(64);
        Engine alone(*model, tokenizer());
        expect_same(alone.run_to_completion({rs[i]})[0], together[i], "request " + std::to_string(i));
    }
}

// A fake model whose next run() throws before writing anything.
class FailingOnce : public FakeStepModel {
public:
    using FakeStepModel::FakeStepModel;
    bool fail_next = false;
    std::span<const float> run(const StepBatch& batch) override {
        if (std::exchange(fail_next, false)) throw Error("fake: the step failed");
        return FakeStepModel::run(batch);
    }
};

TEST(Engine, AFailedStepForgetsThePagesItWasToComputeForThePrefixCache) {
    FailingOnce model(limits());
    Engine engine(model, tokenizer(), {.prefix_cache = true});
    const std::vector<int32_t> prompt = prompt_of(5, 13);
    const RequestId first = engine.submit(greedy(prompt, 3));
    model.fail_next = true;
    EXPECT_NE(error_message([&] { engine.step(); }).find("the step failed"), std::string::npos);
    engine.cancel(first);  // what the server does with the requests of a failed step
    engine.step();
    // Its pages were published when planned but never written: the same prompt must not use them.
    const auto out = engine.run_to_completion({greedy(prompt, 3)});
    EXPECT_EQ(ids(out[0][0]), testing::oracle_greedy(prompt, 3, kVocab));
    EXPECT_EQ(engine.stats().n_prefix_hits, 0);
}

TEST(Engine, MalformedRequestsNameTheField) {
    FakeStepModel model(limits(6, 32));
    Engine engine(model, tokenizer());
    auto message = [&](Request r) { return error_message([&] { engine.submit(r); }); };
    const auto expect_has = [](const std::string& m, const std::string& part) {
        EXPECT_NE(m.find(part), std::string::npos) << m;
    };
    expect_has(message(greedy({}, 4)), "prompt is empty");
    expect_has(message(greedy(prompt_of(1, 32), 4)),
               "prompt is 32 tokens but the model's context holds 32");
    expect_has(message(greedy({1, 2, 200}, 4)), "prompt token 2 is id 200");
    Request n0 = greedy({1, 2}, 4);
    n0.n = 0;
    expect_has(message(n0), "n is 0 but must be >= 1");
    expect_has(message(greedy({1, 2}, -1)), "max_tokens is -1");
    Request stop = greedy({1, 2}, 4);
    stop.stop = {"ok", ""};
    expect_has(message(stop), "stop string 1 is empty");
    Request hot = greedy({1, 2}, 4);
    hot.sampling.temperature = -1;
    expect_has(message(hot), "temperature");
    // 6 pages of 4 positions hold 24; a prompt of 20 and 20 more keep 32 (the context).
    expect_has(message(greedy(prompt_of(2, 20), 20)),
               "need 8 KV pages of 4 positions but the whole cache holds 6");
    EXPECT_FALSE(engine.has_work());
}

}  // namespace
}  // namespace tandem::infer

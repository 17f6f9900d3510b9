// generate() and generate_batch() over the engine and a fake model: the streamed text is the
// result's, a stop string cuts it, a batch gives each prompt what it gives alone, and a bad
// prompt or option names its culprit.
#include "infer/generate.h"

#include <gtest/gtest.h>

#include "common/error_message.h"
#include "common/hf_dir_util.h"
#include "fake_step_model.h"

namespace tandem::infer {
namespace {

const io::BpeTokenizer& tokenizer() {
    static const io::BpeTokenizer t(testing::byte_tokenizer());
    return t;
}

// Vocabulary 128 (ASCII); the end-of-text token (256) is out of the model's reach.
testing::FakeLimits limits() {
    return {.vocab = 128, .max_positions = 48, .max_tokens_per_step = 32, .pages = {64, 4}};
}

GenerateOptions greedy(std::string prompt, int64_t max_tokens) {
    GenerateOptions o{.prompt = std::move(prompt), .max_tokens = max_tokens};
    o.sampling.temperature = 0;
    return o;
}

TEST(Generate, StreamsTheTextOfTheGreedyContinuation) {
    testing::FakeStepModel model(limits());
    Engine engine(model, tokenizer());
    GenerateOptions o = greedy("Hello", 10);
    o.echo_prompt = true;
    std::string streamed;
    const GenerateResult r =
        generate(engine, tokenizer(), o, [&](std::string_view t) { streamed += t; });
    const std::vector<int32_t> prompt = tokenizer().encode("Hello");
    EXPECT_EQ(r.text, tokenizer().decode(testing::oracle_greedy(prompt, 10, 128)));
    EXPECT_EQ(streamed, "Hello" + r.text);
    EXPECT_EQ(r.n_prompt_tokens, 5);
    EXPECT_EQ(r.n_tokens, 10);
    EXPECT_EQ(r.finish_reason, "length");
}

TEST(Generate, AStopStringEndsTheTextRightBeforeIt) {
    testing::FakeStepModel model(limits());
    Engine engine(model, tokenizer());
    GenerateOptions o{.prompt = "Once", .max_tokens = 40, .stop_at_eot = false};
    o.sampling.temperature = 1.0f;
    o.sampling.seed = 17;
    auto run = [&] {
        std::string streamed;
        const GenerateResult r =
            generate(engine, tokenizer(), o, [&](std::string_view t) { streamed += t; });
        EXPECT_EQ(streamed, r.text);
        return r;
    };
    const GenerateResult free = run();
    EXPECT_EQ(free.finish_reason, "length");
    EXPECT_EQ(free.n_tokens, 40);
    ASSERT_EQ(free.text.size(), 40u);   // one byte per token
    EXPECT_EQ(run().text, free.text);  // the seed repeats it
    // A stop string taken from the middle of that text: the same draws up to it, then the cut.
    o.stop = {free.text.substr(20, 3)};
    const size_t at = free.text.find(o.stop[0]);
    const GenerateResult stopped = run();
    EXPECT_EQ(stopped.finish_reason, "stop");
    EXPECT_EQ(stopped.text, free.text.substr(0, at));
    EXPECT_EQ(stopped.n_tokens, int64_t(at + 3));
}

TEST(Generate, RejectsAnEmptyStopStringAndBadSamplingOptions) {
    testing::FakeStepModel model(limits());
    Engine engine(model, tokenizer());
    GenerateOptions o = greedy("x", 4);
    o.stop = {""};
    std::string m = testing::error_message([&] { generate(engine, tokenizer(), o); });
    EXPECT_NE(m.find("stop string 0 is empty"), std::string::npos) << m;
    o.stop = {};
    o.sampling.logit_bias = {{300, 1.0f}};
    m = testing::error_message([&] { generate(engine, tokenizer(), o); });
    EXPECT_NE(m.find("logit_bias names token 300"), std::string::npos) << m;
    EXPECT_FALSE(engine.has_work());
}

TEST(Generate, AnEmptyPromptStartsFromTheEndOfTextTokenWhichAlsoStops) {
    const std::vector<int32_t> prompt = encode_prompt(tokenizer(), "");
    EXPECT_EQ(prompt, std::vector<int32_t>{256});
    const Request r = make_request(tokenizer(), greedy("", 4), prompt);
    EXPECT_NE(std::find(r.stop_ids.begin(), r.stop_ids.end(), 256), r.stop_ids.end());
    GenerateOptions no_eot = greedy("", 4);
    no_eot.stop_at_eot = false;
    EXPECT_TRUE(make_request(tokenizer(), no_eot, prompt).stop_ids.empty());
}

TEST(Generate, ABatchGivesEveryPromptWhatItGivesAlone) {
    std::vector<std::string> prompts;
    for (int i = 0; i < 16; ++i) prompts.push_back(std::string(1 + i % 5, char('a' + i)) + "xyz");
    GenerateOptions o = greedy("", 12);
    testing::FakeStepModel model(limits());
    Engine engine(model, tokenizer(), {.max_seqs = 16, .prefill_chunk = 4});
    int64_t last_done = -1;
    const auto batch = generate_batch(engine, tokenizer(), prompts, o, [&](const BatchProgress& p) {
        EXPECT_GE(p.n_done, last_done);
        EXPECT_EQ(p.n_total, 16);
        last_done = p.n_done;
    });
    EXPECT_EQ(last_done, 16);
    ASSERT_EQ(batch.size(), 16u);
    for (size_t i = 0; i < prompts.size(); ++i) {
        testing::FakeStepModel alone_model(limits());
        Engine alone(alone_model, tokenizer());
        o.prompt = prompts[i];
        const GenerateResult one = generate(alone, tokenizer(), o);
        ASSERT_EQ(batch[i].size(), 1u);
        EXPECT_EQ(batch[i][0].text, one.text) << "prompt " << i;
        EXPECT_EQ(batch[i][0].n_tokens, one.n_tokens);
        EXPECT_EQ(batch[i][0].n_prompt_tokens, one.n_prompt_tokens);
    }
}

TEST(Generate, ABatchRefusesAPromptThatDoesNotFitBeforeRunningAny) {
    testing::FakeStepModel model(limits());
    Engine engine(model, tokenizer());
    const std::vector<std::string> prompts = {"ok", std::string(60, 'x'), "fine"};
    const std::string m =
        testing::error_message([&] { generate_batch(engine, tokenizer(), prompts, greedy("", 4)); });
    EXPECT_NE(m.find("prompt 2: request: prompt is 60 tokens but the model's context holds 48"),
              std::string::npos) << m;
    EXPECT_TRUE(model.steps.empty());
    EXPECT_FALSE(engine.has_work());
}

TEST(Generate, NSamplesPerPrompt) {
    testing::FakeStepModel model(limits());
    Engine engine(model, tokenizer());
    GenerateOptions o = greedy("", 8);
    o.sampling.temperature = 1;
    o.sampling.seed = 3;
    o.n = 3;
    const std::vector<std::string> prompts = {"one", "two"};
    const auto out = generate_batch(engine, tokenizer(), prompts, o);
    ASSERT_EQ(out.size(), 2u);
    ASSERT_EQ(out[0].size(), 3u);
    EXPECT_NE(out[0][0].text, out[0][1].text);
    EXPECT_NE(out[0][1].text, out[0][2].text);
}

}  // namespace
}  // namespace tandem::infer

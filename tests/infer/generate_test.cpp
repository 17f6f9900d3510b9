// generate() on a small random model over a byte tokenizer: what it streams adds up to its
// text, a stop string ends the text right before it, and a seed repeats the text.
#include "infer/generate.h"

#include <gtest/gtest.h>

#include "backend/registry.h"
#include "common/error_message.h"
#include "model/config.h"
#include "model/model.h"

namespace tandem::infer {
namespace {

class Generate : public ::testing::Test {
   protected:
    Generate()
        : model_(config(), backend::get_backend("cpu"), DType::F32, 1, 1),
          tokenizer_(byte_model()),
          decoder_((model_.init(3), model_.weights()), 1, 64, 8) {}

    static model::ModelConfig config() {
        model::ModelConfig c = model::preset_config("tiny");
        c.vocab_size = 257;  // the bytes and <|endoftext|>
        c.max_seq_len = 64;
        return c;
    }
    static io::BpeModel byte_model() {
        io::BpeModel m;
        for (int b = 0; b < 256; ++b) m.tokens.push_back(std::string(1, char(b)));
        m.added.push_back({"<|endoftext|>", 256, true});
        return m;
    }

    // Runs generate and checks that the streamed pieces add up to the result's text.
    GenerateResult run(const GenerateOptions& options) {
        std::string streamed;
        GenerateResult r = generate(decoder_, tokenizer_, options,
                                    [&](std::string_view text) { streamed += text; });
        EXPECT_EQ(streamed, r.text);
        return r;
    }

    model::Model model_;
    io::BpeTokenizer tokenizer_;
    Decoder decoder_;
};

TEST_F(Generate, AStopStringEndsTheTextRightBeforeIt) {
    GenerateOptions o;
    o.prompt = "Once";
    o.max_tokens = 40;
    o.stop_at_eot = false;
    o.sampling.temperature = 1.0f;
    o.sampling.seed = 17;
    const GenerateResult free = run(o);
    EXPECT_EQ(free.finish_reason, "length");
    EXPECT_EQ(free.n_tokens, 40);
    ASSERT_EQ(free.text.size(), 40u);   // one byte per token
    EXPECT_EQ(run(o).text, free.text);  // the seed repeats it

    // A stop string taken from the middle of that text: the same draws up to it, then the cut.
    o.stop = {free.text.substr(20, 3)};
    const size_t at = free.text.find(o.stop[0]);
    const GenerateResult stopped = run(o);
    EXPECT_EQ(stopped.finish_reason, "stop");
    EXPECT_EQ(stopped.text, free.text.substr(0, at));
    EXPECT_EQ(stopped.n_tokens, int64_t(at + 3));
}

TEST_F(Generate, RejectsAnEmptyStopStringAndBadSamplingOptions) {
    GenerateOptions o;
    o.stop = {""};
    EXPECT_NE(testing::error_message([&] { run(o); }).find("stop string 1 of 1 is empty"),
              std::string::npos);
    o.stop = {};
    o.sampling.logit_bias = {{300, 1.0f}};
    EXPECT_NE(testing::error_message([&] { run(o); }).find("logit_bias names token 300"),
              std::string::npos);
}

}  // namespace
}  // namespace tandem::infer

// `tandem perplexity`: scores a text with a tiny model (f32 and quantised at load, the figures
// close), and refuses an empty text, a text shorter than 2 tokens and a window outside the
// model's context, naming the file or the value.
#include <gtest/gtest.h>

#include <fstream>
#include <regex>

#include "cli_util.h"
#include "common/hf_dir_util.h"
#include "model/config.h"

namespace tandem::testing {
namespace {

// A tiny Qwen3-shaped model with the byte tokenizer (vocab 257), context 32.
std::string write_model(const TempDir& tmp) {
    model::ModelConfig c = model::preset_config("qwen3-tiny");
    c.vocab_size = 257;
    c.max_seq_len = 32;
    write_hf_dir(tmp.file("hf"), c, DType::F32);
    return tmp.file("hf");
}

std::string write_text(const TempDir& tmp, const std::string& name, const std::string& text) {
    std::ofstream(tmp.file(name)) << text;
    return tmp.file(name);
}

double perplexity_of(const std::string& out) {
    std::smatch m;
    EXPECT_TRUE(std::regex_search(out, m, std::regex("perplexity ([0-9.]+)"))) << out;
    return m.empty() ? 0 : std::stod(m[1].str());
}

TEST(PerplexityCli, ScoresATextInWindowsAndQuantisedWeightsStayClose) {
    TempDir tmp;
    const std::string model = write_model(tmp);
    const std::string text = write_text(tmp, "t.txt", fortune_corpus().substr(0, 300));
    const std::string base = "perplexity --model " + shell_quoted(model) + " --text " + shell_quoted(text);
    const CliRun f32 = tandem(tmp, base);
    ASSERT_EQ(f32.code, 0) << f32.err;
    // 300 bytes, one token each; windows of 32 (the model's context): 10 windows, 300 - 10 predicted.
    EXPECT_NE(f32.out.find("tokens 300 (290 predicted, windows of 32)"), std::string::npos) << f32.out;
    EXPECT_NE(f32.out.find("tokens/s"), std::string::npos) << f32.out;
    const double p32 = perplexity_of(f32.out);
    // Random weights: near-uniform over 257 bytes.
    EXPECT_GT(p32, 100.0);
    EXPECT_LT(p32, 1000.0);
    const CliRun q8 = tandem(tmp, base + " --quant q8_0");
    ASSERT_EQ(q8.code, 0) << q8.err;
    EXPECT_NEAR(perplexity_of(q8.out), p32, 0.01 * p32);
    const CliRun few = tandem(tmp, base + " --ctx 8 --max-tokens 20");
    ASSERT_EQ(few.code, 0) << few.err;
    EXPECT_NE(few.out.find("tokens 20 (17 predicted, windows of 8)"), std::string::npos) << few.out;
}

TEST(PerplexityCli, RefusesAnEmptyOrOneTokenTextAndAWindowOutsideTheContext) {
    TempDir tmp;
    const std::string model = "perplexity --model " + shell_quoted(write_model(tmp));
    const std::string empty = write_text(tmp, "empty.txt", "");
    CliRun r = tandem(tmp, model + " --text " + shell_quoted(empty));
    EXPECT_EQ(r.code, 1) << r.err;
    EXPECT_NE(r.err.find("--text " + empty + " is empty"), std::string::npos) << r.err;

    const std::string one = write_text(tmp, "one.txt", "a");
    r = tandem(tmp, model + " --text " + shell_quoted(one));
    EXPECT_EQ(r.code, 1) << r.err;
    EXPECT_NE(r.err.find("--text " + one + " is 1 token(s) long, but scoring needs at least 2"),
              std::string::npos)
        << r.err;

    const std::string text = write_text(tmp, "t.txt", "some text to score");
    r = tandem(tmp, model + " --text " + shell_quoted(text) + " --max-tokens 1");
    EXPECT_EQ(r.code, 1) << r.err;
    EXPECT_NE(r.err.find("is 1 token(s) long (after --max-tokens)"), std::string::npos) << r.err;

    r = tandem(tmp, model + " --text " + shell_quoted(text) + " --ctx 33");
    EXPECT_EQ(r.code, 1) << r.err;
    EXPECT_NE(r.err.find("--ctx 33 is outside [2, 32]"), std::string::npos) << r.err;

    r = tandem(tmp, model + " --text " + shell_quoted(text) + " --ctx 1");
    EXPECT_EQ(r.code, 2) << r.err;
    EXPECT_NE(r.err.find("--ctx"), std::string::npos) << r.err;

    r = tandem(tmp, model + " --text " + shell_quoted(tmp.file("missing.txt")));
    EXPECT_EQ(r.code, 1) << r.err;
    EXPECT_NE(r.err.find("missing.txt"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace tandem::testing

#include "infer/verify.h"

#include <gtest/gtest.h>


#include "backend/registry.h"
#include "common/temp_dir.h"
#include "common/hf_dir_util.h"
#include "core/error.h"

namespace tandem::infer {
namespace {

using Rows = std::vector<std::vector<float>>;

TEST(Verify, IdenticalLogitsAgreeEverywhere) {
    const Rows a = {{1, 5, 2}, {0, 1, 9}};
    PairReport r;
    compare_logits(r, a, a, {1, 2}, 1e-3);
    EXPECT_TRUE(r.is_ok);
    EXPECT_EQ(r.top1_agree, 2);
    EXPECT_EQ(r.greedy_agree, 2);
    EXPECT_EQ(r.max_diff, 0);
}

TEST(Verify, ADifferenceBeyondTheToleranceDisagrees) {
    const Rows a = {{1, 5, 2}, {0, 1, 9}};
    Rows b = a;
    b[1][0] += 0.05f;  // 0.05 / 9 > 1e-3, top-1 unchanged
    PairReport r;
    compare_logits(r, a, b, {1, 2}, 1e-3);
    EXPECT_FALSE(r.is_ok);
    EXPECT_EQ(r.top1_agree, 2);
    EXPECT_NEAR(r.max_diff, 0.05, 1e-6);
}

TEST(Verify, ANearTieMaySwapButAClearWinnerMayNot) {
    const Rows a = {{3.0f, 3.0001f, 0.0f}, {0, 1, 9}};
    Rows b = a;
    std::swap(b[0][0], b[0][1]);  // differs by 1e-4 of a logit of 3: within tolerance
    PairReport tie;
    compare_logits(tie, a, b, {1, 2}, 1e-3);
    EXPECT_TRUE(tie.is_ok);
    EXPECT_EQ(tie.near_ties, 1);
    EXPECT_EQ(tie.greedy_agree, 0);  // the sequences part at the first token

    Rows c = a;
    std::swap(c[1][1], c[1][2]);  // 9 against 1: a real disagreement
    PairReport wrong;
    compare_logits(wrong, a, c, {1, 2}, 1e-3);
    EXPECT_FALSE(wrong.is_ok);
    EXPECT_EQ(wrong.greedy_agree, 1);
}

TEST(Verify, ReferenceAndCpuAgreeOnARandomModel) {
    testing::TempDir tmp;
    model::ModelConfig c = model::preset_config("qwen3-tiny");
    c.vocab_size = 260;
    c.max_seq_len = 48;
    testing::write_hf_dir(tmp.file("m"), c, DType::F32);
    const auto source = ModelSource::open(tmp.file("m"));
    const io::BpeTokenizer tokenizer(source->tokenizer());
    VerifyOptions options{{"reference", "cpu"}, {"abc", "The cat"}, 12};
    const VerifyReport report = verify_backends(*source, tokenizer, options);
    ASSERT_EQ(report.pairs.size(), 1u);
    EXPECT_TRUE(report.is_ok()) << report.pairs[0].max_relative;
    EXPECT_EQ(report.pairs[0].n_positions, 24);
    EXPECT_LT(report.pairs[0].max_relative, 1e-4);

    options.backends = {"cpu"};
    EXPECT_THROW(verify_backends(*source, tokenizer, options), Error);
    options.backends = {"reference", "cpu"};
    options.n_tokens = 100;  // past the 48-token context
    EXPECT_THROW(verify_backends(*source, tokenizer, options), Error);
}

}  // namespace
}  // namespace tandem::infer

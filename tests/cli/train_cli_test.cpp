// `tandem train` as a user runs it on their own prepared data: a run that would silently skip
// evaluation is refused up front, unless evaluation is switched off on purpose.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>

#include "cli/cli_util.h"
#include "io/atomic_file.h"

namespace tandem {
namespace {

using testing::CliRun;
using testing::tandem;

// Seconds, not minutes: the tiny preset, 2 steps of 2 x 16 tokens.
constexpr const char* kTinyRun = "model=tiny steps=2 batch_size=2 seq_len=16 warmup_steps=1";

TEST(TrainCli, RefusesToStartWithoutValidationDataUnlessEvalEveryIsZero) {
    testing::TempDir dir;
    std::string tok = testing::trained_tokenizer(dir);
    dir.write("book.txt", testing::fortune_corpus());
    CliRun r = tandem(dir, "prepare --tokenizer " + tok +
                               " --input book.txt --val-fraction 0 --out data");
    ASSERT_EQ(r.code, 0) << r.err;

    r = tandem(dir, std::string("train --data data --out run ") + kTinyRun);
    EXPECT_EQ(r.code, 1) << r.err;
    EXPECT_NE(r.err.find("the val split has 0 tokens"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("--val-fraction"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("eval_every=0"), std::string::npos) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << "one line: " << r.err;

    r = tandem(dir, std::string("train --data data --out run eval_every=0 ") + kTinyRun);
    EXPECT_EQ(r.code, 0) << r.err;
    EXPECT_EQ(io::read_file(dir.file("run/metrics.jsonl")).find("val_loss"), std::string::npos);
}

TEST(TrainCli, OneFilePreparedWithDefaultsIsEvaluated) {
    testing::TempDir dir;
    std::string tok = testing::trained_tokenizer(dir);
    dir.write("book.txt", testing::fortune_corpus());
    CliRun r = tandem(dir, "prepare --tokenizer " + tok + " --input book.txt --out data");
    ASSERT_EQ(r.code, 0) << r.err;
    r = tandem(dir, std::string("train --data data --out run ") + kTinyRun);
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_NE(io::read_file(dir.file("run/metrics.jsonl")).find("val_loss"), std::string::npos);
}

}  // namespace
}  // namespace tandem

// What a user reads on the terminal: an out-of-range number gets one plain line naming the
// option, its range and the value given; generate's text is not interrupted by the backend's
// report of its kernel choice (shown with -v, and by train).
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "cli/cli_util.h"

namespace tandem {
namespace {

using testing::CliRun;
using testing::tandem;

TEST(CliOptions, EveryNumericOptionOutOfRangeGetsOnePlainLine) {
    testing::TempDir dir;
    struct Case {
        std::string args, message;
    };
    const std::vector<Case> cases = {
        {"generate --model m --max-tokens -5", "--max-tokens must be ≥ 0, got -5"},
        {"generate --model m --temperature -0.5", "--temperature must be ≥ 0, got -0.5"},
        {"generate --model m --top-k -3", "--top-k must be ≥ 0, got -3"},
        {"generate --model m --top-p 1.5", "--top-p must be > 0 and ≤ 1, got 1.5"},
        {"generate --model m --top-p 0", "--top-p must be > 0 and ≤ 1, got 0"},
        {"generate --model m --seed -5", "--seed must be ≥ 0, got -5"},
        {"generate --model m --n 0", "--n must be between 1 and 1024, got 0"},
        {"generate --model m --max-seqs 0", "--max-seqs must be between 1 and 4096, got 0"},
        {"generate --model m --max-tokens-per-step 0",
         "--max-tokens-per-step must be between 1 and 1048576, got 0"},
        {"generate --model m --prefill-chunk -1", "--prefill-chunk must be between 1 and 1048576, got -1"},
        {"generate --model m --kv-pages 0", "--kv-pages must be between 1 and 2147483647, got 0"},
        {"generate --model m --kv-memory 0", "--kv-memory must be > 0, got 0"},
        {"generate --model m --kv-page-size 0", "--kv-page-size must be between 1 and 4096, got 0"},
        {"train --out r --supervise -1", "--supervise must be ≥ 0, got -1"},
        {"train --out r --supervise 1 --ranks 0", "--ranks must be ≥ 1, got 0"},
        {"train --out r --stop-after 0", "--stop-after must be > 0, got 0"},
        {"demo --vocab-size 12", "--vocab-size must be between 260 and 65536, got 12"},
        {"demo --steps 0", "--steps must be > 0, got 0"},
        {"demo --samples -1", "--samples must be ≥ 0, got -1"},
        {"prepare --tokenizer t --input i --out o --val-fraction 1",
         "--val-fraction must be ≥ 0 and < 1, got 1"},
        {"prepare --tokenizer t --input i --out o --shard-tokens 0",
         "--shard-tokens must be > 0, got 0"},
        {"prepare --tokenizer t --input i --out o --threads -2", "--threads must be ≥ 0, got -2"},
        {"tokenizer train --input i --out o --vocab-size 12",
         "--vocab-size must be between 257 and 4194304, got 12"},
    };
    for (const Case& c : cases) {
        CliRun r = tandem(dir, c.args);
        EXPECT_EQ(r.code, 2) << c.args << ": " << r.err;
        EXPECT_EQ(r.err.substr(0, r.err.find('\n')), c.message) << c.args;
        EXPECT_LT(r.err.size(), 200u) << c.args << ": " << r.err;
    }
    // In range, the same options parse (and the command fails later, on its missing inputs).
    EXPECT_EQ(tandem(dir, "generate --model m --max-tokens 0 --top-p 1 --top-k 0").code, 1);
}

TEST(GenerateCli, KernelChoiceStaysOutOfTheTextUnlessVerbose) {
    testing::TempDir dir;
    std::string tok = testing::trained_tokenizer(dir);
    dir.write("book.txt", testing::fortune_corpus());
    ASSERT_EQ(tandem(dir, "prepare --tokenizer " + tok + " --input book.txt --out data").code, 0);
    CliRun r = tandem(dir, "train --data data --out run model=tiny steps=2 batch_size=2 seq_len=16");
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_NE(r.err.find("cpu backend: "), std::string::npos) << "train states it: " << r.err;

    const std::string generate = "generate --model run --prompt 'The quick' --max-tokens 8 --seed 1";
    CliRun plain = tandem(dir, generate);
    ASSERT_EQ(plain.code, 0) << plain.err;
    EXPECT_EQ(plain.out.rfind("The quick", 0), 0u) << plain.out;
    EXPECT_EQ(plain.err, "") << "nothing on the terminal between the prompt and its continuation";
    CliRun verbose = tandem(dir, generate + " -v");
    ASSERT_EQ(verbose.code, 0) << verbose.err;
    EXPECT_EQ(verbose.out, plain.out);
    EXPECT_NE(verbose.err.find("cpu backend: "), std::string::npos) << verbose.err;
    CliRun global = tandem(dir, "-v " + generate);
    EXPECT_NE(global.err.find("cpu backend: "), std::string::npos) << global.err;
}

}  // namespace
}  // namespace tandem

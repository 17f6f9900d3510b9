// The whole program on a small corpus: tokenizer, shards, training, generation, resume, and the
// errors a user meets. The corpus is Debian's fortunes (scripts/setup installs it).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <nlohmann/json.hpp>

#include "e2e_util.h"
#include "io/token_stats.h"

namespace tandem::testing {
namespace {

namespace fs = std::filesystem;

class TrainGenerate : public ::testing::Test {
protected:
    static void SetUpTestSuite() {
        dir_ = make_scratch_dir("train_generate");
        const std::string failed = train_tiny_model(dir_);
        ASSERT_EQ(failed, "");
    }
    static void TearDownTestSuite() { fs::remove_all(dir_); }

    static std::string dir_;
};
std::string TrainGenerate::dir_;

// The per-step lines of metrics.jsonl (events such as checkpoints are left out).
std::vector<nlohmann::json> metrics_of(const std::string& run) {
    std::vector<nlohmann::json> records;
    std::ifstream in(run + "/metrics.jsonl");
    for (std::string line; std::getline(in, line);) {
        auto record = nlohmann::json::parse(line);
        if (!record.contains("event")) records.push_back(std::move(record));
    }
    return records;
}

TEST_F(TrainGenerate, TinyModelLearnsWhatAContextBlindModelCannot) {
    const auto records = metrics_of(dir_ + "/run");
    ASSERT_EQ(records.size(), 100u);
    for (const char* key : {"step", "loss", "lr", "grad_norm", "tokens_per_s"})
        EXPECT_TRUE(records.back().contains(key)) << key;
    ASSERT_TRUE(records.back().contains("val_loss"));
    const double val_loss = records.back()["val_loss"].get<double>();
    const double unigram = io::unigram_entropy(dir_ + "/data", "val");
    EXPECT_LT(val_loss, unigram) << "val loss " << val_loss << " vs unigram entropy " << unigram;
    EXPECT_TRUE(fs::exists(dir_ + "/run/loss.svg"));
    EXPECT_TRUE(fs::exists(dir_ + "/run/config.json"));
    for (const char* file : {"model.safetensors", "config.json", "tokenizer.json", "optimizer.safetensors",
                             "state.json", "MANIFEST.json"})
        EXPECT_TRUE(fs::exists(dir_ + "/run/checkpoints/step-100/" + file)) << file;
}

TEST_F(TrainGenerate, StopAndResumeEndsBitwiseIdenticalToAnUninterruptedRun) {
    const std::string config = dir_ + "/config.json", data = dir_ + "/data", run = dir_ + "/resumed";
    const std::string common = " --config " + config + " --data " + data + " --out " + run + " steps=80 checkpoint_every=1000";
    RunResult first = run_tandem("train" + common + " --stop-after 40");
    ASSERT_EQ(first.exit_code, 0) << first.err;
    EXPECT_TRUE(fs::exists(run + "/checkpoints/step-40"));
    EXPECT_FALSE(fs::exists(run + "/checkpoints/step-80"));
    RunResult second = run_tandem("train" + common + " --resume");
    ASSERT_EQ(second.exit_code, 0) << second.err;

    const std::string straight = dir_ + "/straight";
    RunResult whole = run_tandem("train --config " + config + " --data " + data + " --out " + straight +
                                 " steps=80 checkpoint_every=1000");
    ASSERT_EQ(whole.exit_code, 0) << whole.err;
    const std::string a = read_text(run + "/checkpoints/step-80/model.safetensors");
    const std::string b = read_text(straight + "/checkpoints/step-80/model.safetensors");
    ASSERT_FALSE(a.empty());
    EXPECT_TRUE(a == b) << "resumed weights differ from the uninterrupted run's";
    EXPECT_EQ(read_text(run + "/checkpoints/step-80/optimizer.safetensors"),
              read_text(straight + "/checkpoints/step-80/optimizer.safetensors"));
    // The metrics read as one run: the same losses step by step.
    const auto resumed = metrics_of(run), uninterrupted = metrics_of(straight);
    ASSERT_EQ(resumed.size(), 80u);
    ASSERT_EQ(uninterrupted.size(), 80u);
    for (size_t i = 0; i < 80; ++i) EXPECT_EQ(resumed[i]["loss"], uninterrupted[i]["loss"]) << "step " << i + 1;
}

TEST_F(TrainGenerate, GenerationIsDeterministicForASeedAndGreedyAtTemperatureZero) {
    const std::string base = "generate --model " + dir_ + "/run --prompt 'The meaning of' --max-tokens 24 ";
    RunResult a = run_tandem(base + "--temperature 0.9 --seed 3");
    RunResult b = run_tandem(base + "--temperature 0.9 --seed 3");
    ASSERT_EQ(a.exit_code, 0) << a.err;
    EXPECT_EQ(a.out, b.out);
    EXPECT_EQ(a.out.rfind("The meaning of", 0), 0u) << a.out;
    RunResult g1 = run_tandem(base + "--temperature 0");
    RunResult g2 = run_tandem(base + "--temperature 0 --seed 99");
    ASSERT_EQ(g1.exit_code, 0) << g1.err;
    EXPECT_EQ(g1.out, g2.out);  // greedy ignores the seed
    // A checkpoint directory works as well as the run directory.
    RunResult c = run_tandem("generate --model " + dir_ + "/run/checkpoints/step-100 --prompt 'The meaning of' "
                             "--max-tokens 24 --temperature 0.9 --seed 3");
    EXPECT_EQ(c.out, a.out);
}

void expect_user_error(const RunResult& r, const std::string& fragment);

// The lines of a batched generate's stdout, one JSON object per sample.
std::vector<nlohmann::json> json_lines(const std::string& out) {
    std::vector<nlohmann::json> lines;
    std::istringstream in(out);
    for (std::string line; std::getline(in, line);) lines.push_back(nlohmann::json::parse(line));
    return lines;
}

TEST_F(TrainGenerate, GreedyOutputOfEveryPromptIsTheSameAloneAndInABatchOf16) {
    const std::vector<std::string> prompts = {
        "The meaning of", "A", "Science is the", "Computers are", "Never", "What is",
        "The best way to", "If you", "I think that", "In the beginning", "Why", "There are two",
        "Life", "It is a truth universally", "The", "Today"};
    std::string file;
    for (const std::string& p : prompts) file += p + "\n";
    std::ofstream(dir_ + "/prompts.txt") << file;
    const std::string common = "generate --model " + dir_ + "/run --temperature 0 --max-tokens 20 ";
    RunResult batch = run_tandem(common + "--prompts " + dir_ + "/prompts.txt --max-seqs 16 --prefill-chunk 8");
    ASSERT_EQ(batch.exit_code, 0) << batch.err;
    EXPECT_NE(batch.err.find("tokens/s"), std::string::npos) << batch.err;
    const auto lines = json_lines(batch.out);
    ASSERT_EQ(lines.size(), prompts.size()) << batch.out;
    for (size_t i = 0; i < prompts.size(); ++i) {
        EXPECT_EQ(lines[i]["index"], i);
        EXPECT_EQ(lines[i]["prompt"], prompts[i]);
        RunResult alone = run_tandem(common + "--prompt " + shell_quote(prompts[i]));
        ASSERT_EQ(alone.exit_code, 0) << alone.err;
        EXPECT_EQ(alone.out, prompts[i] + lines[i]["text"].get<std::string>() + "\n") << "prompt " << i;
    }
}

TEST_F(TrainGenerate, JsonLinesPromptsWithNSamplesEachAndTheirErrors) {
    std::ofstream(dir_ + "/prompts.jsonl") << "{\"prompt\": \"The meaning of\"}\n{\"prompt\": \"Why\"}\n";
    const std::string common = "generate --model " + dir_ + "/run --temperature 0.9 --seed 5 --max-tokens 12 --n 3 ";
    RunResult a = run_tandem(common + "--prompts " + dir_ + "/prompts.jsonl");
    ASSERT_EQ(a.exit_code, 0) << a.err;
    const auto lines = json_lines(a.out);
    ASSERT_EQ(lines.size(), 6u) << a.out;
    EXPECT_EQ(lines[4]["prompt"], "Why");
    EXPECT_EQ(lines[4]["sample"], 1);
    EXPECT_NE(lines[0]["text"], lines[1]["text"]);  // samples of one prompt differ
    EXPECT_EQ(run_tandem(common + "--prompts " + dir_ + "/prompts.jsonl").out, a.out);  // and repeat

    std::ofstream(dir_ + "/bad.jsonl") << "{\"prompt\": \"a\"}\n{\"text\": \"b\"}\n";
    expect_user_error(run_tandem(common + "--prompts " + dir_ + "/bad.jsonl"), "bad.jsonl:2:");
    expect_user_error(run_tandem(common + "--prompts " + dir_ + "/missing.txt"), "missing.txt");
    expect_user_error(run_tandem(common + "--prompt x --kv-pages 1 --kv-page-size 4"), "KV pages");
}

TEST_F(TrainGenerate, InfoDescribesRunsCheckpointsAndShards) {
    RunResult run = run_tandem("info " + dir_ + "/run");
    ASSERT_EQ(run.exit_code, 0) << run.err;
    EXPECT_NE(run.out.find("llama"), std::string::npos) << run.out;
    EXPECT_NE(run.out.find("val loss"), std::string::npos) << run.out;
    RunResult shards = run_tandem("info " + dir_ + "/data");
    ASSERT_EQ(shards.exit_code, 0) << shards.err;
    EXPECT_NE(shards.out.find("512"), std::string::npos) << shards.out;
}

// One clear line on stderr and exit code 1.
void expect_user_error(const RunResult& r, const std::string& fragment) {
    EXPECT_EQ(r.exit_code, 1) << r.err;
    EXPECT_NE(r.err.find(fragment), std::string::npos) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
}

TEST_F(TrainGenerate, BadInputGivesOneLineAndExitCodeOne) {
    const std::string config = dir_ + "/config.json", data = dir_ + "/data";
    expect_user_error(run_tandem("train --config " + config + " --data " + data + " --out " + dir_ +
                                 "/bad1 batch_sise=4"), "did you mean 'batch_size'");
    EXPECT_FALSE(fs::exists(dir_ + "/bad1/checkpoints"));
    expect_user_error(run_tandem("train --config " + config + " --data " + dir_ + " --out " + dir_ + "/bad2"),
                      "meta.json");
    const std::string long_prompt(4000, 'x');
    expect_user_error(run_tandem("generate --model " + dir_ + "/run --prompt " + shell_quote(std::string(400, ' ') + long_prompt)),
                      "context");
    RunResult usage = run_tandem("train --no-such-flag");
    EXPECT_EQ(usage.exit_code, 2) << usage.err;
}

TEST_F(TrainGenerate, DamagedCheckpointIsRefusedAndTheRunFallsBackToTheOlderOne) {
    // A copy of the run whose newest checkpoint lost bytes.
    const std::string run = dir_ + "/damaged";
    fs::copy(dir_ + "/run", run, fs::copy_options::recursive);
    const std::string weights = run + "/checkpoints/step-100/model.safetensors";
    fs::resize_file(weights, fs::file_size(weights) - 100);
    expect_user_error(run_tandem("generate --model " + run + "/checkpoints/step-100 --prompt x"), "model.safetensors");
    // Given the run, generation uses the newest checkpoint that verifies (step 50), with a warning.
    RunResult fallback = run_tandem("generate --model " + run + " --prompt 'The' --max-tokens 4 -v");
    EXPECT_EQ(fallback.exit_code, 0) << fallback.err;
    EXPECT_NE(fallback.err.find("step-50"), std::string::npos) << fallback.err;
    fs::remove(run + "/checkpoints/step-50/state.json");
    expect_user_error(run_tandem("generate --model " + run + "/checkpoints/step-50 --prompt x"), "state.json");
}

TEST(Cli, CudaDeviceWithoutCudaIsAClearError) {
    RunResult r = run_tandem("generate --model /nonexistent --device cuda --prompt x");
    EXPECT_EQ(r.exit_code, 1) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
}

// Models in and out from the command line: the trained run exported to each format, each read by
// info and generate, the backends verified, and a run started from an export.
TEST_F(TrainGenerate, ExportInfoVerifyAndInitWorkAcrossFormats) {
    const std::string run = dir_ + "/run";
    RunResult hf = run_tandem("export --model " + run + " --format hf --type bf16 --out " + dir_ + "/hf");
    ASSERT_EQ(hf.exit_code, 0) << hf.err;
    RunResult gguf = run_tandem("export --model " + run + " --format gguf --type q8_0 --out " + dir_ + "/m.gguf");
    ASSERT_EQ(gguf.exit_code, 0) << gguf.err;
    RunResult info_hf = run_tandem("info " + dir_ + "/hf");
    EXPECT_NE(info_hf.out.find("Hugging Face model"), std::string::npos) << info_hf.out;
    EXPECT_NE(info_hf.out.find("bf16"), std::string::npos) << info_hf.out;
    RunResult info_gguf = run_tandem("info " + dir_ + "/m.gguf");
    EXPECT_NE(info_gguf.out.find("GGUF model"), std::string::npos) << info_gguf.out;
    EXPECT_NE(info_gguf.out.find("q8_0"), std::string::npos) << info_gguf.out;
    for (const std::string model : {dir_ + "/hf", dir_ + "/m.gguf"}) {
        RunResult g = run_tandem("generate --model " + model + " --prompt 'The meaning of' --max-tokens 8 --temperature 0");
        EXPECT_EQ(g.exit_code, 0) << g.err;
        EXPECT_EQ(g.out.rfind("The meaning of", 0), 0u) << g.out;
    }
    RunResult verify = run_tandem("verify --model " + dir_ + "/hf --backends reference,cpu --tokens 8");
    EXPECT_EQ(verify.exit_code, 0) << verify.err;
    EXPECT_NE(verify.out.find("reference ~ cpu"), std::string::npos) << verify.out;
    EXPECT_NE(verify.out.find("agree"), std::string::npos) << verify.out;

    expect_user_error(run_tandem("export --model " + run + " --format gguf --out " + dir_ + "/m.gguf"), "already exists");
    expect_user_error(run_tandem("export --model " + run + " --format hf --type q4_0 --out " + dir_ + "/q4"), "gguf");
    expect_user_error(run_tandem("verify --model " + run + " --backends cpu"), "at least two");

    RunResult init = run_tandem("train --data " + dir_ + "/data --out " + dir_ + "/ft init=" + dir_ +
                                "/m.gguf steps=2 batch_size=2 seq_len=32 eval_every=2 eval_batches=1");
    EXPECT_EQ(init.exit_code, 0) << init.err;
    EXPECT_NE(init.err.find("starting from the weights of"), std::string::npos) << init.err;

    // Data prepared with another tokenizer would train the model on the wrong ids.
    RunResult tok = run_tandem("tokenizer train --input " + tiny_model_corpus()[0] + " --vocab-size 300 --out " + dir_ + "/other.json");
    ASSERT_EQ(tok.exit_code, 0) << tok.err;
    RunResult prep = run_tandem("prepare --tokenizer " + dir_ + "/other.json --input " + tiny_model_corpus()[0] +
                                " --doc-separator % --out " + dir_ + "/other_data");
    ASSERT_EQ(prep.exit_code, 0) << prep.err;
    RunResult other = run_tandem("train --data " + dir_ + "/other_data --out " + dir_ + "/ft2 init=" +
                                 dir_ + "/hf steps=2 eval_every=0 batch_size=2 seq_len=16");
    EXPECT_EQ(other.exit_code, 1) << other.err;
    EXPECT_NE(other.err.find("another tokenizer"), std::string::npos) << other.err;
}

}  // namespace
}  // namespace tandem::testing

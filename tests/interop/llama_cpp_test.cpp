// llama.cpp as the outside judge of tandem's GGUF files, with its own code: the prebuilt
// libraries of npm node-llama-cpp and tools built against them (llama/build_tools.sh). A model
// tandem trains here is exported to GGUF; llama.cpp loads it, tokenizes fixed prompts into the
// same ids and continues them greedily into the same tokens as tandem (F32, F16: all 32 tokens;
// Q8_0: the first). The other way round, llama-quantize turns tandem's F32 file into Q8_0 and
// Q4_0, and tandem loads llama.cpp's files and continues as llama.cpp does.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "backend/registry.h"
#include "common/temp_dir.h"
#include "common/test_util.h"
#include "infer/decoder.h"
#include "infer/model_source.h"

namespace tandem {
namespace {

namespace fs = std::filesystem;

const char* kCorpus[] = {"/usr/share/games/fortunes/science", "/usr/share/games/fortunes/computers",
                         "/usr/share/games/fortunes/literature", "/usr/share/games/fortunes/wisdom"};
const char* kConfig = R"({"model": {"preset": "tiny", "n_layers": 2, "d_model": 64, "n_heads": 4,
  "n_heads_kv": 2, "head_dim": 16, "d_ffn": 192, "max_seq_len": 128}, "batch_size": 8, "seq_len": 64,
  "steps": 150, "lr": 5e-3, "lr_min": 5e-4, "warmup_steps": 10, "eval_every": 150, "eval_batches": 2,
  "checkpoint_every": 150, "seed": 7})";
const std::vector<std::string> kPrompts = {"The meaning of life is", "A computer", "Science"};
constexpr int kTokens = 32;

std::string quote(const std::string& s) { return "'" + s + "'"; }

struct Continuation {
    std::vector<int32_t> prompt, tokens;
};

// tandem's greedy continuation (argmax, lowest id on ties, no stop token) of prompt ids.
std::vector<int32_t> tandem_greedy(const model::Weights& weights, const std::vector<int32_t>& prompt) {
    infer::Decoder decoder(weights, 1, weights.config().max_seq_len, 64);
    const std::vector<float>* logits = &decoder.feed(prompt, 1, static_cast<int64_t>(prompt.size()));
    std::vector<int32_t> out;
    for (int i = 0; i < kTokens; ++i) {
        const auto best = std::max_element(logits->begin(), logits->end()) - logits->begin();
        out.push_back(static_cast<int32_t>(best));
        if (i + 1 < kTokens) logits = &decoder.feed(std::span(&out.back(), 1), 1, 1);
    }
    return out;
}

class LlamaCpp : public ::testing::Test {
protected:
    static void SetUpTestSuite() {
        dir_ = new testing::TempDir();
        const std::string tandem = quote(testing::tandem_binary());
        const fs::path tools = fs::path(testing::tandem_binary()).parent_path() / "llama-tools";
        std::string& e = setup_error_;
        bin_ = testing::run_command(testing::test_data_path("interop/llama/build_tools.sh") + " " + quote(tools.string()), e);
        while (!bin_.empty() && (bin_.back() == '\n')) bin_.pop_back();
        bin_ = bin_.substr(bin_.rfind('\n') + 1);
        std::string inputs;
        for (const char* file : kCorpus) inputs += " " + quote(file);
        const std::string d = dir_->path();
        testing::run_command(tandem + " tokenizer train --input" + inputs + " --vocab-size 512 --out " + d + "/tok.json", e);
        testing::run_command(tandem + " prepare --tokenizer " + d + "/tok.json --input" + inputs +
            " --doc-separator % --val-fraction 0.05 --out " + d + "/data", e);
        std::ofstream(d + "/config.json") << kConfig;
        testing::run_command("OMP_NUM_THREADS=1 " + tandem + " train --config " + d + "/config.json --data " + d +
            "/data --out " + d + "/run", e);
        for (const char* type : {"f32", "f16", "q8_0"})
            testing::run_command(tandem + " export --model " + d + "/run --format gguf --type " + type + " --out " + d +
                "/" + type + ".gguf", e);
        // A Hugging Face Qwen3 directory: its embedding has more rows than its tokenizer has tokens.
        testing::run_command("/usr/bin/python3 " + quote(testing::test_data_path("interop/make_hf_models.py")) + " " +
            quote(d + "/hf"), e);
        testing::run_command(tandem + " export --model " + d + "/hf/qwen3 --format gguf --type f32 --out " + d +
            "/qwen3.gguf", e);
    }
    void SetUp() override { ASSERT_TRUE(setup_error_.empty()) << setup_error_; }
    static void TearDownTestSuite() { delete dir_; }

    static std::string file(const std::string& name) { return dir_->file(name); }

    static Continuation llama(const std::string& gguf, const std::string& prompt) {
        const auto j = nlohmann::json::parse(testing::run_command(quote(bin_ + "/llama_greedy") + " " + quote(gguf) + " " +
                                                 std::to_string(kTokens) + " " + quote(prompt)));
        return {j["prompt"].get<std::vector<int32_t>>(), j["tokens"].get<std::vector<int32_t>>()};
    }

    // Both sides on one file: the prompt ids must agree; returns the leading tokens in agreement.
    static int agreeing_tokens(const std::string& gguf, const std::string& prompt) {
        const infer::LoadedModel m = infer::load_model(gguf, backend::get_backend("cpu"));
        const Continuation want = llama(gguf, prompt);
        EXPECT_EQ(m.tokenizer->encode_with_special(prompt), want.prompt) << prompt;
        const std::vector<int32_t> got = tandem_greedy(*m.weights, want.prompt);
        int n = 0;
        while (n < kTokens && got[n] == want.tokens[n]) ++n;
        return n;
    }

    static testing::TempDir* dir_;
    static std::string bin_, setup_error_;
};
testing::TempDir* LlamaCpp::dir_ = nullptr;
std::string LlamaCpp::bin_, LlamaCpp::setup_error_;

TEST_F(LlamaCpp, LoadsTandemsF32AndF16ExportsAndContinuesAsTandemDoes) {
    for (const char* type : {"f32", "f16"})
        for (const auto& prompt : kPrompts)
            EXPECT_EQ(agreeing_tokens(file(std::string(type) + ".gguf"), prompt), kTokens)
                << type << ": '" << prompt << "'";
}

// Qwen3's vocabulary is padded to 151,936 rows past its 151,669 tokens; llama.cpp loads the
// export only with a token entry per row.
TEST_F(LlamaCpp, LoadsAQwen3DirectoryExportedAsGgufAndContinuesAsTandemDoes) {
    for (const auto& prompt : kPrompts)
        EXPECT_EQ(agreeing_tokens(file("qwen3.gguf"), prompt), kTokens) << "'" << prompt << "'";
}

TEST_F(LlamaCpp, AgreesOnTheFirstTokenOfTandemsQ8_0Export) {
    for (const auto& prompt : kPrompts) {
        const int n = agreeing_tokens(file("q8_0.gguf"), prompt);
        EXPECT_GE(n, 1) << "'" << prompt << "'";
        std::printf("q8_0 '%s': %d of %d greedy tokens agree\n", prompt.c_str(), n, kTokens);
    }
}

TEST_F(LlamaCpp, TandemLoadsWhatLlamaQuantizeWritesAndContinuesAsLlamaCppDoes) {
    for (const char* type : {"Q8_0", "Q4_0"}) {
        const std::string out = file(std::string("llama_") + type + ".gguf");
        // --pure: every matrix in the one type (by default Q4_0 files keep the head in Q6_K).
        testing::run_command(quote(bin_ + "/llama-quantize") + " --pure " + quote(file("f32.gguf")) + " " + quote(out) + " " + type);
        const auto source = infer::ModelSource::open(out);
        EXPECT_EQ(source->main_dtype(), dtype_from_name(type));
        for (const auto& prompt : kPrompts) {
            const int n = agreeing_tokens(out, prompt);
            EXPECT_GE(n, 1) << type << ": '" << prompt << "'";
            std::printf("llama-quantize %s '%s': %d of %d greedy tokens agree\n", type, prompt.c_str(), n, kTokens);
        }
    }
}

}  // namespace
}  // namespace tandem

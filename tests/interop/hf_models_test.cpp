// Hugging Face model directories as users download them, against PyTorch: make_hf_models.py
// writes Qwen3-, Llama-3- and Qwen2-shaped directories (bf16, sharded, real tokenizer files);
// tandem loads each, its logits equal the PyTorch reference forward's, `tandem generate` runs on
// it, and an export of it reads back in PyTorch with the same logits.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "backend/registry.h"
#include "common/hf_dir_util.h"
#include "common/temp_dir.h"
#include "common/test_util.h"
#include "infer/model_export.h"
#include "infer/model_source.h"
#include "model/model.h"

namespace tandem {
namespace {

namespace fs = std::filesystem;

std::string script() { return testing::test_data_path("interop/make_hf_models.py"); }

struct Reference {
    std::vector<int32_t> tokens;
    std::vector<float> logits;  // [T, V]
};

Reference torch_logits(const std::string& dir) {
    const nlohmann::json j = nlohmann::json::parse(testing::run_command("/usr/bin/python3 '" + script() + "' --logits '" + dir + "'"));
    Reference r;
    r.tokens = j["tokens"].get<std::vector<int32_t>>();
    for (const auto& row : j["logits"])
        for (const auto& v : row) r.logits.push_back(v.get<float>());
    return r;
}

std::vector<float> tandem_logits(const model::Weights& weights, const std::vector<int32_t>& tokens) {
    backend::Backend& be = backend::get_backend("cpu");
    const int64_t T = static_cast<int64_t>(tokens.size());
    model::Model m(weights.config(), be, DType::F32, 1, T);
    m.load_weights(weights);
    m.forward(tokens, {}, 1, T);
    std::vector<float> out(T * weights.config().vocab_size);
    be.copy_to_host(out.data(), m.logits().data, out.size() * sizeof(float));
    return out;
}

class HfModels : public ::testing::TestWithParam<std::string> {
protected:
    static void SetUpTestSuite() {
        dir_ = new testing::TempDir();
        // Recorded, not failed here: gtest would only skip the tests after a failed suite setup.
        testing::run_command("/usr/bin/python3 '" + script() + "' '" + dir_->path() + "' >/dev/null", setup_error_);
    }
    static void TearDownTestSuite() { delete dir_; }
    void SetUp() override { ASSERT_TRUE(setup_error_.empty()) << setup_error_; }
    static testing::TempDir* dir_;
    static std::string setup_error_;
};
testing::TempDir* HfModels::dir_ = nullptr;
std::string HfModels::setup_error_;

TEST_P(HfModels, LoadsShardedBf16AndMatchesPyTorchsLogits) {
    const std::string dir = dir_->file(GetParam());
    const auto source = infer::ModelSource::open(dir);
    EXPECT_EQ(source->format(), infer::ModelFormat::HuggingFace);
    EXPECT_EQ(source->main_dtype(), DType::BF16);
    const model::Weights weights = infer::load_weights(*source, backend::get_backend("cpu"), DType::F32);
    const Reference want = torch_logits(dir);
    EXPECT_LE(testing::relative_error(tandem_logits(weights, want.tokens), want.logits), 1e-5);
}

TEST_P(HfModels, ExportReadsBackInPyTorchWithTheSameLogits) {
    const std::string dir = dir_->file(GetParam());
    const auto source = infer::ModelSource::open(dir);
    const model::Weights weights = infer::load_weights(*source, backend::get_backend("cpu"), std::nullopt);
    const std::string out = dir_->file(GetParam() + "_export_f32");
    infer::export_model(*source, weights, {infer::ExportFormat::HuggingFace, DType::F32, out});
    const Reference want = torch_logits(out);
    const model::Weights back = infer::load_weights(*infer::ModelSource::open(out), backend::get_backend("cpu"), DType::F32);
    EXPECT_LE(testing::relative_error(tandem_logits(back, want.tokens), want.logits), 1e-5);
}

TEST_P(HfModels, GenerateRunsOnTheDirectory) {
    const std::string command = "'" + testing::tandem_binary() + "' generate --model '" + dir_->file(GetParam()) +
                                "' --prompt 'Hello there' --max-tokens 8 --temperature 0 2>&1";
    const std::string out = testing::run_command(command);
    EXPECT_NE(out.find("Hello there"), std::string::npos) << out;
}

INSTANTIATE_TEST_SUITE_P(Families, HfModels, ::testing::Values("qwen3", "llama3", "qwen2"));

TEST(HfExport, Gpt2ExportReadsBackInPyTorchWithTheSameLogits) {
    testing::TempDir tmp;
    model::ModelConfig c = model::preset_config("gpt2-124m");
    c.n_layers = 2, c.d_model = 64, c.n_heads = 4, c.n_heads_kv = 4, c.head_dim = 16, c.d_ffn = 256;
    c.vocab_size = 300, c.max_seq_len = 64;
    testing::write_hf_dir(tmp.file("gpt2"), c, DType::F32, 1, "transformer.");
    const auto source = infer::ModelSource::open(tmp.file("gpt2"));
    const model::Weights weights = infer::load_weights(*source, backend::get_backend("cpu"), std::nullopt);
    infer::export_model(*source, weights, {infer::ExportFormat::HuggingFace, DType::F32, tmp.file("out")});
    const Reference want = torch_logits(tmp.file("out"));
    EXPECT_LE(testing::relative_error(tandem_logits(weights, want.tokens), want.logits), 1e-5);
}

}  // namespace
}  // namespace tandem

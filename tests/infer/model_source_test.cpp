#include "infer/model_source.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "backend/registry.h"
#include "common/temp_dir.h"
#include "common/test_util.h"
#include "common/hf_dir_util.h"
#include "core/error.h"
#include "core/quant.h"
#include "infer/model_export.h"
#include "io/atomic_file.h"
#include "io/safetensors.h"
#include "io/tokenizer_files.h"
#include "model/hf_config.h"

namespace tandem::infer {
namespace {

using testing::HfDir;
using testing::TempDir;
using testing::write_hf_dir;

model::ModelConfig config_of(const std::string& preset) {
    model::ModelConfig c = model::preset_config(preset);
    c.vocab_size = 260;  // the byte tokenizer below and a little room
    c.max_seq_len = 32;
    if (c.family == model::Family::Gpt2)
        c.n_layers = 2, c.d_model = 32, c.n_heads = 4, c.n_heads_kv = 4, c.head_dim = 8, c.d_ffn = 64;
    return c;
}

void expect_error_naming(const std::function<void()>& fn, const std::vector<std::string>& parts) {
    try {
        fn();
        FAIL() << "no error";
    } catch (const Error& e) {
        for (const auto& part : parts)
            EXPECT_NE(std::string(e.what()).find(part), std::string::npos) << e.what() << " lacks " << part;
    }
}

TEST(ModelSource, ReadsAShardedBf16HuggingFaceDirectoryKeepingOrConvertingTheDtype) {
    TempDir tmp;
    const std::string dir = tmp.file("qwen3");
    const HfDir hf = write_hf_dir(dir, config_of("qwen3-tiny"), DType::BF16, 3);
    const auto source = ModelSource::open(dir);
    EXPECT_EQ(source->format(), ModelFormat::HuggingFace);
    EXPECT_EQ(source->main_dtype(), DType::BF16);
    const model::Weights kept = load_weights(*source, backend::get_backend("cpu"), std::nullopt);
    const model::Weights wide = load_weights(*source, backend::get_backend("reference"), DType::F32);
    EXPECT_EQ(kept.dtype_of("model.layers.1.mlp.up_proj.weight"), DType::BF16);
    EXPECT_TRUE(wide.is_uniform());
    for (const auto& t : hf.tensors) {
        std::vector<float> want(t.numel());
        convert_values(want.data(), DType::F32, t.data, DType::BF16, t.numel());
        ASSERT_EQ(kept.get_f32(t.name), want) << t.name;
        ASSERT_EQ(wide.get_f32(t.name), want) << t.name;
    }
}

TEST(ModelSource, AcceptsGpt2NamesWithTheTransformerPrefixAndSkipsItsMaskBuffers) {
    TempDir tmp;
    const std::string dir = tmp.file("gpt2");
    const model::ModelConfig c = config_of("gpt2-124m");
    HfDir hf = write_hf_dir(dir, c, DType::F32, 1, "transformer.");
    // Older GPT-2 files also hold each block's causal mask as "h.N.attn.bias".
    std::vector<float> mask(c.max_seq_len * c.max_seq_len, 1.0f);
    hf.tensors.push_back({"transformer.h.0.attn.bias", DType::F32, {c.max_seq_len, c.max_seq_len}, mask.data(), 0});
    io::save_safetensors(dir + "/model.safetensors", hf.tensors);
    const auto source = ModelSource::open(dir);
    const model::Weights w = load_weights(*source, backend::get_backend("cpu"), DType::F32);
    EXPECT_EQ(w.get_f32("h.1.mlp.c_fc.weight"), hf.weights.get_f32("h.1.mlp.c_fc.weight"));
}

TEST(ModelSource, RefusesMissingExtraAndMisshapenTensorsNamingThem) {
    TempDir tmp;
    const std::string dir = tmp.file("m");
    HfDir hf = write_hf_dir(dir, config_of("tiny"), DType::F32, 1);
    auto reload = [&] { load_weights(*ModelSource::open(dir), backend::get_backend("cpu"), DType::F32); };

    auto missing = hf.tensors;
    missing.erase(missing.begin() + 3);
    io::save_safetensors(dir + "/model.safetensors", missing);
    expect_error_naming(reload, {hf.tensors[3].name, "has no tensor"});

    auto extra = hf.tensors;
    std::vector<float> bias(config_of("tiny").d_model);
    extra.push_back({"model.layers.0.self_attn.o_proj.bias", DType::F32, {int64_t(bias.size())}, bias.data(), 0});
    io::save_safetensors(dir + "/model.safetensors", extra);
    expect_error_naming(reload, {"model.layers.0.self_attn.o_proj.bias", "has no place"});

    auto misshapen = hf.tensors;
    auto matrix = std::find_if(misshapen.begin(), misshapen.end(), [](const auto& t) {
        return t.shape.size() == 2 && t.shape[0] != t.shape[1];
    });
    ASSERT_NE(matrix, misshapen.end());
    std::swap(matrix->shape[0], matrix->shape[1]);
    io::save_safetensors(dir + "/model.safetensors", misshapen);
    expect_error_naming(reload, {matrix->name, "config implies"});
}

TEST(ModelSource, RefusesAnIndexThatNamesAMissingShardOrAPathOutsideTheDirectory) {
    TempDir tmp;
    const std::string dir = tmp.file("sharded");
    write_hf_dir(dir, config_of("tiny"), DType::F16, 2);
    const std::string index_path = dir + "/model.safetensors.index.json";
    nlohmann::json index = nlohmann::json::parse(io::read_file(index_path));
    const std::string name = index["weight_map"].begin().key();

    nlohmann::json escaping = index;
    escaping["weight_map"][name] = "../elsewhere.safetensors";
    io::write_file_atomic(index_path, escaping.dump());
    expect_error_naming([&] { ModelSource::open(dir); }, {"model.safetensors.index.json", "not a plain file name"});

    nlohmann::json absent = index;
    absent["weight_map"][name] = "model-00009-of-00009.safetensors";
    io::write_file_atomic(index_path, absent.dump());
    expect_error_naming([&] { ModelSource::open(dir); }, {"model-00009-of-00009.safetensors", "incomplete download"});

    io::write_file_atomic(index_path, "{\"weight_map\": [1, 2]");
    expect_error_naming([&] { ModelSource::open(dir); }, {"model.safetensors.index.json", "not valid JSON"});
}

TEST(ModelSource, ReadsStopIdsFromGenerationConfigAndRefusesIdsOutsideTheVocabulary) {
    TempDir tmp;
    const std::string dir = tmp.file("g");
    write_hf_dir(dir, config_of("tiny"), DType::F32, 1);
    io::write_file_atomic(dir + "/generation_config.json", R"({"eos_token_id": [256, 3]})");
    EXPECT_EQ(ModelSource::open(dir)->generation().stop_ids, (std::vector<int32_t>{256, 3}));
    io::write_file_atomic(dir + "/generation_config.json", R"({"eos_token_id": 9999})");
    expect_error_naming([&] { ModelSource::open(dir); }, {"generation_config.json", "9999"});
}

TEST(ModelSource, SaysWhatItLookedForWhenThePathIsNoModel) {
    TempDir tmp;
    expect_error_naming([&] { ModelSource::open(tmp.file("absent")); }, {"absent", "no such file"});
    expect_error_naming([&] { ModelSource::open(tmp.path()); }, {"config.json"});
    const std::string text = tmp.write("notes.txt", "hello");
    expect_error_naming([&] { ModelSource::open(text); }, {"notes.txt", ".gguf"});
}

TEST(ModelExport, HuggingFaceExportReadsBackInEachDtypeAndNeverReplacesAnything) {
    TempDir tmp;
    const std::string dir = tmp.file("src");
    write_hf_dir(dir, config_of("qwen3-tiny"), DType::F32, 1);
    const auto source = ModelSource::open(dir);
    const model::Weights weights = load_weights(*source, backend::get_backend("cpu"), std::nullopt);
    for (DType dtype : {DType::F32, DType::BF16, DType::F16}) {
        const std::string out = tmp.file(std::string("out_") + std::string(dtype_name(dtype)));
        export_model(*source, weights, {ExportFormat::HuggingFace, dtype, out});
        const auto back = ModelSource::open(out);
        EXPECT_EQ(back->main_dtype(), dtype);
        const model::Weights w = load_weights(*back, backend::get_backend("cpu"), std::nullopt);
        for (const auto& e : w.layout().entries()) {
            std::vector<float> want = weights.get_f32(e.name);
            if (e.shape.ndim == 2) {  // matrices in the asked dtype, norms kept f32
                std::vector<char> narrow(dtype_bytes(dtype, want.size()));
                convert_values(narrow.data(), dtype, want.data(), DType::F32, want.size());
                convert_values(want.data(), DType::F32, narrow.data(), dtype, want.size());
            }
            ASSERT_EQ(w.get_f32(e.name), want) << e.name << " in " << dtype_name(dtype);
        }
        expect_error_naming([&] { export_model(*source, weights, {ExportFormat::HuggingFace, dtype, out}); },
                            {out, "already exists"});
    }
    expect_error_naming([&] { export_model(*source, weights, {ExportFormat::HuggingFace, DType::Q8_0, tmp.file("q")}); },
                        {"q8_0", "gguf"});
    expect_error_naming([&] { export_model(*source, weights, {ExportFormat::HuggingFace, DType::F32, dir + "/inner"}); },
                        {"inside the source"});
}

}  // namespace
}  // namespace tandem::infer

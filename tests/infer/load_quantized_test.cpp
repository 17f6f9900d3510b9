// --quant at load (load_weights_quantized): each storage dtype from a wider file, what stays f32,
// a Q8_0 GGUF kept bit for bit, the refusal to widen a narrower file, and a decoder that runs
// the loaded weights (quantised products, tables and head) on cpu as reference/ does.
#include <gtest/gtest.h>

#include "backend/registry.h"
#include "common/hf_dir_util.h"
#include "common/temp_dir.h"
#include "common/test_util.h"
#include "core/error.h"
#include "core/quant.h"
#include "infer/decoder.h"
#include "infer/model_export.h"
#include "infer/model_source.h"
#include "model/config.h"

namespace tandem::infer {
namespace {

using testing::TempDir;
using testing::write_hf_dir;

model::ModelConfig config_of(const std::string& preset) {
    model::ModelConfig c = model::preset_config(preset);
    c.vocab_size = 257;  // the byte tokenizer's, as a GGUF export records it
    c.max_seq_len = 32;
    if (c.family == model::Family::Gpt2)
        c.n_layers = 2, c.d_model = 64, c.n_heads = 4, c.n_heads_kv = 4, c.head_dim = 16, c.d_ffn = 128;
    return c;
}

std::string error_of(const std::function<void()>& fn) {
    try {
        fn();
    } catch (const Error& e) {
        return e.what();
    }
    return "no error";
}

// x as a tensor of `dtype` holds it, widened back to f32.
std::vector<float> stored_as(DType dtype, std::vector<float> x) {
    std::vector<char> narrow(dtype_bytes(dtype, x.size()));
    convert_values(narrow.data(), dtype, x.data(), DType::F32, x.size());
    convert_values(x.data(), DType::F32, narrow.data(), dtype, x.size());
    return x;
}

TEST(LoadQuantized, StoresMatricesInTheAskedDtypeAndNormsInF32) {
    TempDir tmp;
    const std::string dir = tmp.file("qwen3");
    const testing::HfDir hf = write_hf_dir(dir, config_of("qwen3-tiny"), DType::F32);
    const auto source = ModelSource::open(dir);
    for (DType quant : {DType::Q8_0, DType::Q4_0, DType::BF16, DType::F16, DType::F32}) {
        const model::Weights w = load_weights_quantized(*source, backend::get_backend("cpu"), quant);
        for (const auto& e : w.layout().entries()) {
            const DType want = e.shape.ndim == 2 ? quant : DType::F32;
            ASSERT_EQ(w.dtype_of(e.name), want) << e.name << " --quant " << dtype_name(quant);
            ASSERT_EQ(w.get_f32(e.name), stored_as(want, hf.weights.get_f32(e.name)))
                << e.name << " --quant " << dtype_name(quant);
        }
        // No f32 copy beside the quantised one: the buffer is what the dtypes take.
        if (quant == DType::Q4_0) {
            const model::Weights f32 = load_weights(*source, backend::get_backend("cpu"), DType::F32);
            EXPECT_LT(w.bytes(), f32.bytes() / 4);
        }
    }
}

TEST(LoadQuantized, KeepsAQ8GgufBitForBitAndRefusesToWidenAQ4Gguf) {
    TempDir tmp;
    const std::string dir = tmp.file("hf");
    write_hf_dir(dir, config_of("qwen3-tiny"), DType::F32);
    const auto source = ModelSource::open(dir);
    const model::Weights f32 = load_weights(*source, backend::get_backend("cpu"), std::nullopt);
    const std::string q8 = tmp.file("m-q8.gguf"), q4 = tmp.file("m-q4.gguf");
    export_model(*source, f32, {ExportFormat::Gguf, DType::Q8_0, q8});
    export_model(*source, f32, {ExportFormat::Gguf, DType::Q4_0, q4});

    const auto q8_source = ModelSource::open(q8);
    const model::Weights kept =
        load_weights_quantized(*q8_source, backend::get_backend("cpu"), DType::Q8_0);
    const model::Weights as_file = load_weights(*q8_source, backend::get_backend("cpu"), std::nullopt);
    for (const auto& e : kept.layout().entries()) {
        ASSERT_EQ(kept.dtype_of(e.name), as_file.dtype_of(e.name)) << e.name;
        ASSERT_EQ(kept.get_f32(e.name), as_file.get_f32(e.name)) << e.name;
    }
    // Narrower than the file: allowed.
    const model::Weights q4_of_q8 =
        load_weights_quantized(*q8_source, backend::get_backend("cpu"), DType::Q4_0);
    EXPECT_EQ(q4_of_q8.dtype_of("model.layers.0.mlp.down_proj.weight"), DType::Q4_0);

    const auto q4_source = ModelSource::open(q4);
    for (DType wider : {DType::Q8_0, DType::F16, DType::F32}) {
        const std::string msg = error_of([&] {
            load_weights_quantized(*q4_source, backend::get_backend("cpu"), wider);
        });
        EXPECT_NE(msg.find(q4), std::string::npos) << msg;
        EXPECT_NE(msg.find("stored as q4_0"), std::string::npos) << msg;
        EXPECT_NE(msg.find("--quant " + std::string(dtype_name(wider))), std::string::npos) << msg;
        EXPECT_NE(msg.find("tensor '"), std::string::npos) << msg;
    }
}

// The whole decoder over quantised weights: logits on cpu (quantised products, quantised
// embedding tables, the tied head through matmul_weights) against reference/ on the same
// weights. Q8_0/Q4_0 differ by the cpu's 8-bit rounding of activations (about 1% relative per
// product, compounding over the layers), f16 by f32 summation order only.
TEST(LoadQuantized, DecoderOnCpuMatchesReferenceOnQuantisedWeights) {
    for (const std::string preset : {"qwen3-tiny", "gpt2-124m"}) {
        TempDir tmp;
        const std::string dir = tmp.file("m");
        write_hf_dir(dir, config_of(preset), DType::F32);
        const auto source = ModelSource::open(dir);
        for (DType quant : {DType::Q8_0, DType::Q4_0, DType::F16}) {
            std::vector<std::vector<float>> logits;
            for (const char* be : {"cpu", "reference"}) {
                const model::Weights w =
                    load_weights_quantized(*source, backend::get_backend(be), quant);
                Decoder decoder(w, 1, 16, 8);
                const std::vector<int32_t> prompt = {1, 72, 101, 108, 108, 111};
                decoder.feed(prompt, 1, static_cast<int64_t>(prompt.size()));
                const std::vector<int32_t> next = {44};
                logits.push_back(decoder.feed(next, 1, 1));
            }
            const double tolerance = quant == DType::F16 ? 1e-4 : 5e-2;
            EXPECT_LE(testing::relative_error(logits[0], logits[1]), tolerance)
                << preset << " --quant " << dtype_name(quant);
        }
    }
}

}  // namespace
}  // namespace tandem::infer

// `--quant` on generate and verify: a value outside the list is a usage error naming the accepted
// ones, a file narrower than the asked dtype is refused naming the tensor, and a model quantised
// at load generates.
#include <gtest/gtest.h>

#include "backend/registry.h"
#include "cli_util.h"
#include "common/hf_dir_util.h"
#include "infer/model_export.h"
#include "infer/model_source.h"
#include "model/config.h"

namespace tandem::testing {
namespace {

// A tiny Qwen3-shaped model as a Hugging Face directory (f32) and as a Q4_0 GGUF.
struct Models {
    std::string hf, q4;
};
Models write_models(const TempDir& tmp) {
    model::ModelConfig c = model::preset_config("qwen3-tiny");
    c.vocab_size = 257;  // the byte tokenizer's, as a GGUF export records it
    c.max_seq_len = 32;
    Models m{tmp.file("hf"), tmp.file("m-q4.gguf")};
    write_hf_dir(m.hf, c, DType::F32);
    const auto source = infer::ModelSource::open(m.hf);
    const model::Weights w = infer::load_weights(*source, backend::get_backend("cpu"), std::nullopt);
    infer::export_model(*source, w, {infer::ExportFormat::Gguf, DType::Q4_0, m.q4});
    return m;
}

TEST(QuantCli, RejectsAnUnknownValueNamingTheAcceptedOnes) {
    TempDir tmp;
    for (const char* cmd : {"generate", "verify"}) {
        const CliRun r = tandem(tmp, std::string(cmd) + " --model nowhere --quant q5_1");
        EXPECT_EQ(r.code, 2) << cmd << ": " << r.err;
        EXPECT_NE(r.err.find("--quant must be one of q8_0, q4_0, bf16, f16, f32, got q5_1"),
                  std::string::npos)
            << cmd << ": " << r.err;
    }
}

TEST(QuantCli, GeneratesFromWeightsQuantisedAtLoadAndRefusesToWiden) {
    TempDir tmp;
    const Models m = write_models(tmp);
    for (const char* quant : {"q8_0", "q4_0", "bf16"}) {
        const CliRun r = tandem(tmp, "generate --model " + shell_quoted(m.hf) + " --quant " +
                                         quant + " --prompt hi --max-tokens 4");
        EXPECT_EQ(r.code, 0) << quant << ": " << r.err;
        EXPECT_EQ(r.out.rfind("hi", 0), 0u) << quant << ": " << r.out;  // the echoed prompt
    }
    const CliRun r = tandem(tmp, "generate --model " + shell_quoted(m.q4) +
                                     " --quant q8_0 --prompt hi --max-tokens 4");
    EXPECT_EQ(r.code, 1) << r.err;
    EXPECT_NE(r.err.find("is stored as q4_0, narrower than --quant q8_0"), std::string::npos)
        << r.err;
}

}  // namespace
}  // namespace tandem::testing

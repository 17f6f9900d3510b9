// GGUF export checked against llama.cpp, by hand until the lead wires it into the interop suite.
// This side writes a random two-layer model per architecture (llama untied, qwen3, gpt2 tied) as
// GGUF through tandem's mapping, with a byte-level tokenizer, and tandem's own logits for a fixed
// token sequence; llama_side.cpp loads each file with llama.cpp and compares. Weights are
// U(-0.4, 0.4), so attention is sharp and a wrong q/k permutation shows (run with "nopermute" as
// the second argument to see the check fail: max diff 9.6 instead of 0.01); "q8" and "q4"
// write the matrices as Q8_0 / Q4_0 (tandem then computes with the dequantized file values).
// Build from the repository root, after building build/dev (libtandem.a):
//   g++ -std=c++20 -O1 -Isrc tests/interop/gguf_llama_cpp/tandem_side.cpp build/dev/libtandem.a \
//     -lxxhash -lpcre2-8 -lopenblas -fopenmp -o /tmp/tandem_side && /tmp/tandem_side /tmp/out
#include <cstdio>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "backend/registry.h"
#include "io/gguf.h"
#include "io/gguf_tokenizer.h"
#include "io/pretokenizer.h"
#include "infer/gguf_model.h"
#include "model/model.h"
using namespace tandem;
using namespace tandem::io;
int main(int argc, char** argv) {
    std::string dir = argv[1];
    const std::string mode = argc > 2 ? argv[2] : "f32";  // f32, q8, q4 or nopermute
    BpeModel tok;
    for (int b = 0; b < 256; ++b) tok.tokens.push_back(std::string(1, char(b)));
    tok.merges.push_back({' ', 't', 256});
    tok.tokens.push_back(" t");
    tok.merges.push_back({'h', 'e', 257});
    tok.tokens.push_back("he");
    tok.merges.push_back({256, 'h', 258});
    tok.tokens.push_back(" th");
    tok.added.push_back({"<|endoftext|>", 259, true});
    tok.eos_id = 259;
    tok.bos_id = 259;
    const std::vector<int32_t> tokens = {259, 72, 101, 258, 257, 33, 10, 200, 5, 256, 258, 44};
    for (std::string arch : {"llama", "qwen3", "gpt2"}) {
        model::ModelConfig c;
        c.family = arch == "gpt2" ? model::Family::Gpt2 : model::Family::Llama;
        c.n_layers = 2;
        c.n_heads = 4;
        c.n_heads_kv = arch == "gpt2" ? 4 : 2;
        c.d_model = 64;
        c.head_dim = 16;
        c.d_ffn = 96;
        c.vocab_size = 260;
        c.max_seq_len = 32;
        c.qk_norm = arch == "qwen3";
        c.tie_embeddings = arch != "llama";
        c.rope_theta = 10000.0f;
        c.norm_eps = 1e-5f;
        tok.pattern = arch == "gpt2"    ? kGpt2Pattern
                      : arch == "qwen3" ? kQwen2Pattern
                                        : kLlama3Pattern;
        c.validate();
        auto& be = backend::get_backend("cpu");
        model::Model m(c, be, DType::F32, 1, 32);
        std::mt19937 rng(42);
        std::uniform_real_distribution<float> u(-1, 1);
        GgufMetadata md;
        infer::add_config_to_gguf(md, c, false);
        add_bpe_model_to_gguf(md, tok);
        std::vector<infer::OwnedGgufTensor> owned;
        std::vector<GgufTensor> ts;
        for (const auto& e : m.layout().entries()) {
            std::vector<float> v(e.numel());
            const bool is_norm = e.role == model::ParamRole::Norm;
            for (auto& x : v) x = is_norm ? 1.0f + 0.3f * u(rng) : 0.4f * u(rng);
            auto map = infer::gguf_tensor_for_hf(e.name, c, arch);
            if (mode == "nopermute") map.transform = infer::GgufTransform::None;
            std::vector<int64_t> shape(e.shape.dims.begin(), e.shape.dims.begin() + e.shape.ndim);
            // Quantized modes: matrices whose GGUF rows hold whole blocks go to Q8_0 / Q4_0, and
            // tandem computes with the values the file holds.
            DType dtype = DType::F32;
            const int64_t last =
                map.transform == infer::GgufTransform::Transpose ? shape[0] : shape.back();
            if (shape.size() == 2 && last % 32 == 0 && mode == "q8") dtype = DType::Q8_0;
            if (shape.size() == 2 && last % 32 == 0 && mode == "q4") dtype = DType::Q4_0;
            owned.push_back(infer::gguf_tensor_from_hf(map, v, shape, dtype));
            std::vector<int64_t> hf_shape;
            if (mode != "nopermute")
                v = infer::hf_values_from_gguf(owned.back().info, map, hf_shape);
            m.load_param(e.name, v);
            ts.push_back(owned.back().info);
        }
        save_gguf(dir + "/" + arch + ".gguf", md, ts);
        m.forward(tokens, {}, 1, int64_t(tokens.size()));
        const float* logits = static_cast<const float*>(m.logits().data);
        std::ofstream out(dir + "/" + arch + ".logits");
        for (size_t t = 0; t < tokens.size(); ++t)
            for (int64_t k = 0; k < c.vocab_size; ++k) out << logits[t * c.vocab_size + k] << "\n";
        {
            auto back = bpe_model_from_gguf(md);
            std::printf("%s: tandem tokens:", arch.c_str());
            for (auto id : BpeTokenizer(back).encode("the thin he<|endoftext|> theta"))
                std::printf(" %d", id);
            std::printf("\n");
        }
        // round trip through tandem's reader too
        GgufReader r(dir + "/" + arch + ".gguf");
        auto g = infer::config_from_gguf(r);
        std::printf("%s: written, read back as %s, %zu tensors, %zu bytes of tokens\n",
                    arch.c_str(), g.architecture.c_str(), r.tensors().size(),
                    md.get_strings("tokenizer.ggml.tokens").size());
    }
}

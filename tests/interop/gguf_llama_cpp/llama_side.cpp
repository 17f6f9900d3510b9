// The llama.cpp side of tandem_side.cpp: loads a GGUF, prints how llama.cpp tokenizes a text
// (tandem_side prints tandem's ids for the same text) and compares llama.cpp's logits for the
// fixed token sequence with tandem's. Built against the prebuilt libraries of npm node-llama-cpp
// 3.22.1 (llama.cpp 0.5.0; see /work/shared/recipes/llama-cpp-peer.md), in that recipe's peer/:
//   mkdir -p bin && cp $L/*.so bin/ && g++ -O1 -std=c++17 -Isrc/include -Isrc/ggml/include \
//     .../llama_side.cpp -o bin/llama_side -Lbin -l:libllama.v0.5.0.so -l:libggml.v0.5.0.so \
//     -l:libggml-base.so '-Wl,-rpath,$ORIGIN' -pthread
//   for a in llama qwen3 gpt2; do bin/llama_side /tmp/out/$a.gguf /tmp/out/$a.logits; done
// Measured (F32 weights, llama.cpp's default F16 KV cache, 12 positions x 260 logits):
// max |llama.cpp - tandem| 0.0106 (llama, max |logit| 7.39), 0.0082 (qwen3, 5.82), 0.0078
// (gpt2, 8.57); token ids identical for all three pre-tokenizers. With the matrices in Q8_0 (Q4_0):
// 0.34 (0.40), 0.20 (0.31), 0.19 (0.16): ggml dequantizes tandem's blocks to exactly tandem's
// values (dequant_check.cpp), so the rest is llama.cpp quantizing activations for its quantized
// products. Without the q/k permutation ("nopermute"), llama: 9.56.
#include <cmath>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "llama.h"
int main(int argc, char** argv) {
    std::string path = argv[1], logits_path = argc > 2 ? argv[2] : "";
    ggml_backend_load_all();
    llama_log_set(
        [](ggml_log_level lvl, const char* text, void*) {
            if (lvl >= GGML_LOG_LEVEL_ERROR) fputs(text, stderr);
        },
        nullptr);
    auto mp = llama_model_default_params();
    llama_model* model = llama_model_load_from_file(path.c_str(), mp);
    if (!model) {
        std::printf("%s: LOAD FAILED\n", path.c_str());
        return 1;
    }
    const llama_vocab* vocab = llama_model_get_vocab(model);
    std::string text = "the thin he<|endoftext|> theta";
    std::vector<llama_token> ids(64);
    int n = llama_tokenize(vocab, text.c_str(), int(text.size()), ids.data(), 64, false, true);
    ids.resize(n);
    std::printf("%s: loaded; tokens of '%s':", path.c_str(), text.c_str());
    for (auto t : ids) std::printf(" %d", t);
    std::printf("\n");
    if (logits_path.empty()) return 0;
    const std::vector<llama_token> tokens = {259, 72, 101, 258, 257, 33, 10, 200, 5, 256, 258, 44};
    auto cp = llama_context_default_params();
    cp.n_ctx = 32;
    cp.n_batch = 32;
    cp.n_threads = 1;
    cp.n_threads_batch = 1;
    llama_context* ctx = llama_init_from_model(model, cp);
    llama_batch batch = llama_batch_init(32, 0, 1);
    for (size_t i = 0; i < tokens.size(); ++i) {
        batch.token[i] = tokens[i];
        batch.pos[i] = int(i);
        batch.n_seq_id[i] = 1;
        batch.seq_id[i][0] = 0;
        batch.logits[i] = 1;
    }
    batch.n_tokens = int(tokens.size());
    if (llama_decode(ctx, batch) != 0) {
        std::printf("decode failed\n");
        return 1;
    }
    std::ifstream in(logits_path);
    const int V = llama_vocab_n_tokens(vocab);
    double max_diff = 0, max_abs = 0;
    for (size_t t = 0; t < tokens.size(); ++t) {
        const float* l = llama_get_logits_ith(ctx, int(t));
        for (int k = 0; k < V; ++k) {
            float want;
            in >> want;
            max_diff = std::fmax(max_diff, std::fabs(l[k] - want));
            max_abs = std::fmax(max_abs, std::fabs(want));
        }
    }
    std::printf(
        "%s: logits of %zu positions x %d: max |llama.cpp - tandem| = %.3g (max |logit| %.3g)\n",
        path.c_str(), tokens.size(), V, max_diff, max_abs);
    return 0;
}

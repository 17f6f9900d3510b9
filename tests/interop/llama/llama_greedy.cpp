// llama.cpp's greedy continuation of a prompt, for tandem's interop tests: loads a GGUF with
// llama.cpp's own code (the prebuilt libraries node-llama-cpp ships), tokenizes the prompt the way
// llama.cpp does for that file (BOS as the file says), and prints one JSON line:
//   {"n_vocab": V, "prompt": [ids], "tokens": [greedy ids]}
// Usage: llama_greedy MODEL.gguf N_TOKENS TEXT       (TEXT tokenized by llama.cpp)
//        llama_greedy MODEL.gguf N_TOKENS --ids 1,2,3 (ids given, no tokenizer involved)
// Greedy is the argmax of the logits, lowest id on ties, as tandem's sampler does at
// temperature 0. Built by build_tools.sh.
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "ggml-backend.h"
#include "llama.h"

namespace {

void quiet(ggml_log_level level, const char* text, void*) {
    if (level == GGML_LOG_LEVEL_ERROR) std::fputs(text, stderr);
}

std::vector<llama_token> parse_ids(const std::string& list) {
    std::vector<llama_token> ids;
    size_t at = 0;
    while (at < list.size()) {
        size_t end = list.find(',', at);
        if (end == std::string::npos) end = list.size();
        ids.push_back(static_cast<llama_token>(std::stol(list.substr(at, end - at))));
        at = end + 1;
    }
    return ids;
}

void print_ids(const char* key, const std::vector<llama_token>& ids) {
    std::printf("\"%s\": [", key);
    for (size_t i = 0; i < ids.size(); ++i) std::printf("%s%d", i ? ", " : "", ids[i]);
    std::printf("]");
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 4 || (std::string(argv[3]) == "--ids" && argc < 5)) {
        std::fprintf(stderr, "usage: %s MODEL.gguf N_TOKENS (TEXT | --ids 1,2,3)\n", argv[0]);
        return 2;
    }
    llama_log_set(quiet, nullptr);
    ggml_backend_load_all();
    llama_backend_init();
    llama_model_params model_params = llama_model_default_params();
    llama_model* model = llama_model_load_from_file(argv[1], model_params);
    if (!model) {
        std::fprintf(stderr, "llama.cpp could not load %s\n", argv[1]);
        return 1;
    }
    const llama_vocab* vocab = llama_model_get_vocab(model);
    const int n_tokens = std::atoi(argv[2]);
    std::vector<llama_token> prompt;
    if (std::string(argv[3]) == "--ids") {
        prompt = parse_ids(argv[4]);
    } else {
        const std::string text = argv[3];
        prompt.resize(text.size() + 8);
        const int n = llama_tokenize(vocab, text.data(), static_cast<int32_t>(text.size()), prompt.data(),
                                     static_cast<int32_t>(prompt.size()), /*add_special=*/true,
                                     /*parse_special=*/false);
        if (n < 0) {
            std::fprintf(stderr, "llama.cpp could not tokenize the prompt\n");
            return 1;
        }
        prompt.resize(n);
    }
    llama_context_params ctx_params = llama_context_default_params();
    ctx_params.n_ctx = static_cast<uint32_t>(prompt.size() + n_tokens + 1);
    ctx_params.n_batch = ctx_params.n_ctx;
    ctx_params.n_threads = ctx_params.n_threads_batch = 2;
    llama_context* ctx = llama_init_from_model(model, ctx_params);
    if (!ctx) {
        std::fprintf(stderr, "llama.cpp could not create a context\n");
        return 1;
    }
    const int n_vocab = llama_vocab_n_tokens(vocab);
    std::vector<llama_token> generated;
    llama_batch batch = llama_batch_get_one(prompt.data(), static_cast<int32_t>(prompt.size()));
    for (int i = 0; i < n_tokens; ++i) {
        if (llama_decode(ctx, batch) != 0) {
            std::fprintf(stderr, "llama_decode failed at token %d\n", i);
            return 1;
        }
        const float* logits = llama_get_logits_ith(ctx, -1);
        llama_token best = 0;
        for (llama_token t = 1; t < n_vocab; ++t)
            if (logits[t] > logits[best]) best = t;
        generated.push_back(best);
        batch = llama_batch_get_one(&generated.back(), 1);
    }
    std::printf("{\"n_vocab\": %d, ", n_vocab);
    print_ids("prompt", prompt);
    std::printf(", ");
    print_ids("tokens", generated);
    std::printf("}\n");
    llama_free(ctx);
    llama_model_free(model);
    return 0;
}

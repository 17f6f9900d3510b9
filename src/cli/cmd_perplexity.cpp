// `tandem perplexity`: how well a model predicts a text file. Encodes the file with the model's
// tokenizer, scores it in windows through the paged forward pass (infer/perplexity.h) and prints
// one line: tokens, perplexity, mean NLL and tokens/s. --quant compares quantised weights.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <memory>
#include <optional>
#include <vector>

#include "backend/registry.h"
#include "cli/commands.h"
#include "cli/options.h"
#include "cli/progress_bar.h"
#include "core/error.h"
#include "infer/model_source.h"
#include "infer/paged_forward.h"
#include "infer/perplexity.h"
#include "io/atomic_file.h"

namespace tandem::cli {

namespace {

struct PerplexityArgs {
    std::string model_path, text_path, device = "cpu";
    std::optional<DType> quant;
    int64_t ctx = 0;         // 0: infer::default_ctx, the model's context capped
    int64_t max_tokens = 0;  // 0: the whole text
};

constexpr int64_t kPageSize = 16;
constexpr int64_t kChunk = 256;  // rows a step: the cost of a prefill, logits of every row

void run_perplexity(const PerplexityArgs& a) {
    const std::string text = io::read_file(a.text_path);
    if (text.empty())
        throw Error("perplexity: --text ", a.text_path, " is empty; give a file of text to score");
    backend::Backend& be = backend::get_backend(a.device);
    const infer::LoadedModel loaded = infer::load_model(a.model_path, be, a.quant);
    const model::ModelConfig& c = loaded.weights->config();
    if (a.ctx > c.max_seq_len)
        throw Error("perplexity: --ctx ", a.ctx, " is outside [2, ", c.max_seq_len,
                    "] (the context of ", a.model_path, "); choose a smaller window");
    const int64_t ctx = a.ctx > 0 ? a.ctx : infer::default_ctx(c.max_seq_len);

    std::vector<int32_t> tokens;
    loaded.tokenizer->encode_ordinary(text, tokens);
    if (a.max_tokens > 0 && int64_t(tokens.size()) > a.max_tokens) tokens.resize(a.max_tokens);
    if (tokens.size() < 2)
        throw Error("perplexity: --text ", a.text_path, " is ", tokens.size(),
                    " token(s) long", a.max_tokens > 0 ? " (after --max-tokens)" : "",
                    ", but scoring needs at least 2; give a longer text");

    const int64_t chunk = std::min(ctx, kChunk);
    infer::PagedForward model(
        *loaded.weights,
        {.max_tokens_per_step = chunk,
         .pages = {.n_pages = (ctx + kPageSize - 1) / kPageSize, .page_size = kPageSize}});
    const auto start = std::chrono::steady_clock::now();
    const bool draw = stderr_is_terminal();
    const infer::PerplexityResult r = infer::perplexity(
        model, tokens, {.ctx = ctx, .chunk = chunk}, [&](const infer::PerplexityProgress& p) {
            if (draw)
                std::fprintf(stderr, "\rperplexity: %lld/%lld tokens ", (long long)p.n_done,
                             (long long)p.n_total);
        });
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (draw) std::fputc('\n', stderr);
    std::printf("tokens %zu (%lld predicted, windows of %lld)  perplexity %.4f  nll %.6f  %.1f "
                "tokens/s\n",
                tokens.size(), (long long)r.n_tokens, (long long)ctx, r.perplexity, r.nll,
                double(tokens.size()) / std::max(seconds, 1e-9));
}

}  // namespace

void add_perplexity_command(CLI::App& app) {
    auto a = std::make_shared<PerplexityArgs>();
    CLI::App* cmd = app.add_subcommand(
        "perplexity", "How well a model predicts a text: perplexity of its tokens in windows");
    cmd->add_option("--model", a->model_path, "a tandem run or checkpoint directory, a Hugging Face model directory, or a .gguf file")
        ->required();
    cmd->add_option("--text", a->text_path, "the text file to score")->required();
    at_least(cmd->add_option("--ctx", a->ctx,
                             "tokens per window (default: the model's context, at most 1024)"),
             2);
    at_least(cmd->add_option("--max-tokens", a->max_tokens, "score only the first N tokens (0 = all)"), 0);
    cmd->add_option("--device", a->device, "cpu, cuda, reference or auto")->capture_default_str();
    add_quant_option(cmd, a->quant);
    cmd->callback([a] { run_perplexity(*a); });
}

}  // namespace tandem::cli

// `tandem generate`: continues one prompt, streaming its text to stdout, or many (--prompts FILE,
// --n samples each) batched through the engine, one JSON line per sample, with a progress line
// and tokens/s on stderr. Weights are loaded in one place (load_weights_for_generation).
#include <chrono>
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>

#include "backend/registry.h"
#include "cli/commands.h"
#include "cli/options.h"
#include "cli/progress_bar.h"
#include "core/error.h"
#include "core/log.h"
#include "infer/engine.h"
#include "infer/generate.h"
#include "infer/model_source.h"
#include "infer/paged_forward.h"
#include "io/prompt_file.h"

namespace tandem::cli {

namespace {

struct GenerateArgs {
    std::string model_path, device = "cpu", prompts_path;
    infer::GenerateOptions options;
    EngineArgs engine;
    std::optional<DType> quant;  // --quant: the matrices' storage dtype at load
    bool verbose = false;
};

// The one place weights come in: a load-time option (quantization, say) changes only this.
infer::LoadedModel load_weights_for_generation(const GenerateArgs& a, backend::Backend& be) {
    return infer::load_model(a.model_path, be, a.quant);
}

// Pages of the KV cache: --kv-pages, else --kv-memory, else enough for every sequence of the
// run at once (at most --max-seqs of them), each as long as the longest prompt and --max-tokens.
int64_t kv_pages(const EngineArgs& e, const model::ModelConfig& c, int64_t n_seqs,
                 int64_t n_positions) {
    if (e.kv_pages > 0) return e.kv_pages;
    const DType dtype = dtype_from_name(e.kv_dtype);
    const double page_bytes = 2.0 * double(c.n_layers) * double(e.kv_page_size) *
                              double(c.n_heads_kv * c.head_dim) * double(dtype_size(dtype));
    if (e.kv_memory_mb > 0) {
        const auto pages = static_cast<int64_t>(e.kv_memory_mb * 1e6 / page_bytes);
        if (pages < 1)
            throw Error("--kv-memory ", e.kv_memory_mb, " MB holds no page of ", page_bytes / 1e6,
                        " MB (", e.kv_page_size, " positions of ", c.n_layers,
                        " layers; raise --kv-memory or lower --kv-page-size)");
        return pages;
    }
    const int64_t per_seq = (n_positions + e.kv_page_size - 1) / e.kv_page_size;
    return std::min(n_seqs, e.max_seqs) * per_seq;
}

struct EngineRun {
    std::unique_ptr<infer::StepModel> model;
    std::unique_ptr<infer::Engine> engine;
};

EngineRun make_engine(const GenerateArgs& a, const infer::LoadedModel& loaded, int64_t n_seqs,
                      int64_t longest_prompt) {
    const model::ModelConfig& c = loaded.weights->config();
    const int64_t n_positions = std::min(c.max_seq_len, longest_prompt + a.options.max_tokens);
    const EngineArgs& e = a.engine;
    // A step holds every running sequence's decode token and a prompt chunk, unless told less.
    const int64_t step_rows =
        e.max_tokens_per_step > 0 ? e.max_tokens_per_step
                                  : e.prefill_chunk + std::min(n_seqs, e.max_seqs);
    EngineRun run;
    run.model = std::make_unique<infer::PagedForward>(
        *loaded.weights,
        infer::PagedForwardOptions{
            .max_tokens_per_step = step_rows,
            .pages = {.n_pages = kv_pages(e, c, n_seqs, n_positions), .page_size = e.kv_page_size},
            .kv_dtype = dtype_from_name(e.kv_dtype)});
    run.engine = std::make_unique<infer::Engine>(
        *run.model, *loaded.tokenizer,
        infer::EngineOptions{.max_seqs = e.max_seqs,
                             .prefill_chunk = e.prefill_chunk,
                             .prefix_cache = e.prefix_cache_on()});
    return run;
}

double seconds_since(std::chrono::steady_clock::time_point start) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// One prompt, one sample: its text streamed as it becomes final.
void run_single(const GenerateArgs& a, const infer::LoadedModel& loaded,
                infer::GenerateOptions options) {
    const int64_t n_prompt = int64_t(infer::encode_prompt(*loaded.tokenizer, options.prompt).size());
    EngineRun run = make_engine(a, loaded, 1, n_prompt);
    const auto start = std::chrono::steady_clock::now();
    const infer::GenerateResult result =
        infer::generate(*run.engine, *loaded.tokenizer, options, [](std::string_view text) {
            std::fwrite(text.data(), 1, text.size(), stdout);
            std::fflush(stdout);
        });
    const double seconds = seconds_since(start);
    std::fputc('\n', stdout);
    if (a.verbose) {
        char rate[64];
        std::snprintf(rate, sizeof rate, "%.2f s (%.1f tokens/s)", seconds,
                      result.n_tokens / std::max(seconds, 1e-9));
        log_info("generate: ", result.n_prompt_tokens, " prompt tokens, ", result.n_tokens,
                 " generated in ", rate, ", finished by ", result.finish_reason, " (",
                 infer::format_name(loaded.source->format()), " ", loaded.source->path(), ")");
    }
}

// Every prompt of the file (or the one --prompt) with --n samples each, batched: one JSON line
// per sample on stdout, in prompt order.
void run_batch(const GenerateArgs& a, const infer::LoadedModel& loaded,
               const infer::GenerateOptions& options) {
    const std::vector<std::string> prompts = a.prompts_path.empty()
                                                 ? std::vector<std::string>{options.prompt}
                                                 : io::read_prompt_file(a.prompts_path);
    int64_t longest = 0;
    for (const std::string& p : prompts)
        longest = std::max<int64_t>(longest, infer::encode_prompt(*loaded.tokenizer, p).size());
    EngineRun run = make_engine(a, loaded, int64_t(prompts.size()) * options.n, longest);
    const bool draw = stderr_is_terminal();
    const auto start = std::chrono::steady_clock::now();
    auto last_draw = start;
    const auto results = infer::generate_batch(
        *run.engine, *loaded.tokenizer, prompts, options, [&](const infer::BatchProgress& p) {
            const auto now = std::chrono::steady_clock::now();
            if (!draw || now - last_draw < std::chrono::milliseconds(200)) return;
            last_draw = now;
            std::fprintf(stderr, "\rgenerate: %lld/%lld sequences done, %lld tokens, %.1f tokens/s ",
                         (long long)p.n_done, (long long)p.n_total, (long long)p.n_tokens,
                         p.n_tokens / std::max(seconds_since(start), 1e-9));
        });
    const double seconds = seconds_since(start);
    if (draw) std::fputc('\n', stderr);
    int64_t n_prompt_tokens = 0, n_tokens = 0;
    for (size_t i = 0; i < results.size(); ++i)
        for (size_t s = 0; s < results[i].size(); ++s) {
            const infer::GenerateResult& r = results[i][s];
            n_tokens += r.n_tokens;
            n_prompt_tokens += s == 0 ? r.n_prompt_tokens : 0;
            const nlohmann::json line = {{"index", i},          {"sample", s},
                                         {"prompt", prompts[i]}, {"text", r.text},
                                         {"finish_reason", r.finish_reason},
                                         {"prompt_tokens", r.n_prompt_tokens},
                                         {"tokens", r.n_tokens}};
            // Generated bytes need not be valid UTF-8 (a sample cut mid-character).
            std::puts(line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
        }
    std::fflush(stdout);
    const infer::EngineStats& st = run.engine->stats();
    std::fprintf(stderr,
                 "generate: %zu prompts x %lld samples: %lld prompt tokens, %lld generated in "
                 "%.2f s (%.1f tokens/s; %lld steps, %lld preemptions)\n",
                 prompts.size(), (long long)options.n, (long long)n_prompt_tokens,
                 (long long)n_tokens, seconds, n_tokens / std::max(seconds, 1e-9),
                 (long long)st.n_steps, (long long)st.n_preemptions);
}

void run_generate(const GenerateArgs& a) {
    backend::Backend& be = backend::get_backend(a.device);
    const infer::LoadedModel loaded = load_weights_for_generation(a, be);
    infer::GenerateOptions options = a.options;
    options.stop_ids = loaded.source->generation().stop_ids;
    if (a.prompts_path.empty() && options.n == 1) return run_single(a, loaded, options);
    options.echo_prompt = false;  // each JSON line carries its prompt
    run_batch(a, loaded, options);
}

}  // namespace

void add_generate_command(CLI::App& app) {
    auto a = std::make_shared<GenerateArgs>();
    infer::GenerateOptions& o = a->options;
    CLI::App* cmd = app.add_subcommand(
        "generate",
        "Continue a prompt with a trained model (streamed), or many prompts batched: --prompts "
        "FILE or --n > 1 prints one JSON line per sample");
    cmd->add_option("--model", a->model_path, "a tandem run or checkpoint directory, a Hugging Face model directory, or a .gguf file")
        ->required();
    CLI::Option* prompt = cmd->add_option("--prompt", o.prompt, "the text to continue (default: start of a document)");
    cmd->add_option("--prompts", a->prompts_path,
                    "a file of prompts, one per line or JSON Lines with a \"prompt\" field (- for stdin), run batched")
        ->excludes(prompt);
    between(cmd->add_option("--n", o.n, "samples per prompt (sample i draws with the seed and i)"), 1, 1024);
    at_least(cmd->add_option("--max-tokens", o.max_tokens, "tokens to generate at most"), 0);
    add_sampling_options(cmd, o.sampling, o.stop, "random seed: the same seed gives the same text");
    add_engine_options(cmd, a->engine);
    cmd->add_option("--device", a->device, "cpu, cuda, reference or auto")->capture_default_str();
    add_quant_option(cmd, a->quant);
    cmd->add_flag("-v,--verbose", a->verbose, "print token counts, the checkpoint used and the kernels chosen to stderr")
        ->each([](const std::string&) { set_log_details(true); });
    o.echo_prompt = true;
    cmd->callback([a] { run_generate(*a); });
}

}  // namespace tandem::cli

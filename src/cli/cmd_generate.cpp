// `tandem generate`: continues a prompt with a trained model, streaming the text to stdout.
#include <cstdio>
#include <memory>

#include "backend/registry.h"
#include "cli/commands.h"
#include "cli/options.h"
#include "core/log.h"
#include "infer/decoder.h"
#include "infer/generate.h"
#include "infer/model_source.h"

namespace tandem::cli {

namespace {

struct GenerateArgs {
    std::string model_path, device = "cpu";
    infer::GenerateOptions options;
    std::optional<DType> quant;
    bool verbose = false;
};

void run_generate(const GenerateArgs& a) {
    a.options.sampling.validate();
    backend::Backend& be = backend::get_backend(a.device);
    infer::LoadedModel loaded = infer::load_model(a.model_path, be, a.quant);
    const int64_t context = loaded.weights->config().max_seq_len;
    infer::Decoder decoder(*loaded.weights, 1, context, std::min<int64_t>(context, 256));
    infer::GenerateOptions options = a.options;
    options.stop_ids = loaded.source->generation().stop_ids;
    const infer::GenerateResult result =
        infer::generate(decoder, *loaded.tokenizer, options, [](std::string_view text) {
            std::fwrite(text.data(), 1, text.size(), stdout);
            std::fflush(stdout);
        });
    std::fputc('\n', stdout);
    if (a.verbose)
        log_info("generate: ", result.n_prompt_tokens, " prompt tokens, ", result.n_tokens,
                 " generated, finished by ", result.finish_reason, " (",
                 infer::format_name(loaded.source->format()), " ", loaded.source->path(), ")");
}

}  // namespace

void add_generate_command(CLI::App& app) {
    auto a = std::make_shared<GenerateArgs>();
    infer::GenerateOptions& o = a->options;
    CLI::App* cmd = app.add_subcommand("generate", "Continue a prompt with a trained model");
    cmd->add_option("--model", a->model_path, "a tandem run or checkpoint directory, a Hugging Face model directory, or a .gguf file")
        ->required();
    cmd->add_option("--prompt", o.prompt, "the text to continue (default: start of a document)");
    at_least(cmd->add_option("--max-tokens", o.max_tokens, "tokens to generate at most"), 0);
    at_least(cmd->add_option("--temperature", o.sampling.temperature, "0 = greedy"), 0)->capture_default_str();
    at_least(cmd->add_option("--top-k", o.sampling.top_k, "sample from the k most likely tokens (0 = all)"), 0);
    check_range(cmd->add_option("--top-p", o.sampling.top_p, "sample from the smallest set with this much probability"),
                {.lo = 0, .hi = 1, .lo_open = true});
    at_least(cmd->add_option("--seed", o.sampling.seed, "random seed: the same seed gives the same text"), 0);
    cmd->add_option("--stop", o.stop, "stop before this string (repeatable)");
    cmd->add_option("--device", a->device, "cpu, cuda, reference or auto")->capture_default_str();
    add_quant_option(cmd, a->quant);
    cmd->add_flag("-v,--verbose", a->verbose, "print token counts, the checkpoint used and the kernels chosen to stderr")
        ->each([](const std::string&) { set_log_details(true); });
    o.echo_prompt = true;
    cmd->callback([a] { run_generate(*a); });
}

}  // namespace tandem::cli

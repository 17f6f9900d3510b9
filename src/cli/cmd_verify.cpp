// `tandem verify`: runs one model on several backends and says whether they agree, per pair of
// backends, within the f32 tolerance; exit 1 when they do not.
#include <cstdio>
#include <memory>
#include <sstream>

#include "backend/registry.h"
#include "cli/commands.h"
#include "cli/options.h"
#include "core/error.h"
#include "core/log.h"
#include "infer/model_source.h"
#include "infer/verify.h"
#include "io/atomic_file.h"

namespace tandem::cli {

namespace {

// Short prompts of different kinds, for when the user gives none.
const std::vector<std::string> kDefaultPrompts = {"The", "Once upon a time", "1, 2, 3,",
                                                  "def main():"};

struct VerifyArgs {
    std::string model_path, backends, prompts_file;
    int64_t n_tokens = 64;
    std::optional<DType> quant;
};

std::vector<std::string> split_list(const std::string& text) {
    std::vector<std::string> out;
    std::stringstream in(text);
    for (std::string item; std::getline(in, item, ',');)
        if (!item.empty()) out.push_back(item);
    return out;
}

void run_verify(const VerifyArgs& a) {
    infer::VerifyOptions options;
    options.backends = a.backends.empty() ? backend::available_backends() : split_list(a.backends);
    options.n_tokens = a.n_tokens;
    options.quant = a.quant;
    if (a.prompts_file.empty()) {
        options.prompts = kDefaultPrompts;
    } else {
        std::stringstream lines(io::read_file(a.prompts_file));
        for (std::string line; std::getline(lines, line);)
            if (!line.empty()) options.prompts.push_back(line);
        if (options.prompts.empty()) throw Error(a.prompts_file, ": holds no prompt (one per line)");
    }
    const auto source = infer::ModelSource::open(a.model_path);
    const io::BpeTokenizer tokenizer(source->tokenizer());
    std::printf("verify: %s %s, %zu prompts x %lld greedy tokens\n",
                std::string(infer::format_name(source->format())).c_str(), source->path().c_str(),
                options.prompts.size(), static_cast<long long>(options.n_tokens));
    const infer::VerifyReport report = infer::verify_backends(
        *source, tokenizer, options, [](const std::string& what) { log_info("verify: ", what); });
    std::printf("%-22s %14s %12s %14s %16s  %s\n", "backends", "max |dlogit|", "relative",
                "top-1 agree", "greedy agree", "verdict");
    for (const auto& p : report.pairs) {
        const std::string pair = p.a + " ~ " + p.b;
        const std::string top1 = std::to_string(p.top1_agree) + "/" + std::to_string(p.n_positions);
        const std::string greedy = std::to_string(p.greedy_agree) + "/" + std::to_string(p.n_greedy);
        std::string verdict = p.is_ok ? "agree" : "DISAGREE";
        if (p.near_ties) verdict += " (" + std::to_string(p.near_ties) + " near ties)";
        std::printf("%-22s %14.3g %12.3g %14s %16s  %s\n", pair.c_str(), p.max_diff, p.max_relative,
                    top1.c_str(), greedy.c_str(), verdict.c_str());
    }
    if (!report.is_ok())
        throw Error("the backends disagree beyond the f32 tolerance (", options.tolerance,
                    " of the largest logit)");
}

}  // namespace

void add_verify_command(CLI::App& app) {
    auto a = std::make_shared<VerifyArgs>();
    CLI::App* cmd = app.add_subcommand("verify", "Check that the backends run a model the same way");
    cmd->add_option("--model", a->model_path,
                    "a tandem run or checkpoint, a Hugging Face model directory, or a .gguf file")
        ->required();
    cmd->add_option("--backends", a->backends,
                    "comma-separated, e.g. reference,cpu,cuda (default: every backend available)");
    cmd->add_option("--prompts", a->prompts_file, "a file of prompts, one per line");
    cmd->add_option("--tokens", a->n_tokens, "greedy tokens per prompt")->capture_default_str();
    add_quant_option(cmd, a->quant);
    cmd->callback([a] { run_verify(*a); });
}

}  // namespace tandem::cli

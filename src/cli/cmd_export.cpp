// `tandem export`: writes any model tandem reads as a Hugging Face directory or a GGUF file, in
// the dtype asked for.
#include <cstdio>
#include <memory>

#include "backend/registry.h"
#include "cli/commands.h"
#include "core/log.h"
#include "infer/model_export.h"
#include "infer/model_source.h"

namespace tandem::cli {

namespace {

struct ExportArgs {
    std::string model_path, format = "hf", type, out;
};

void run_export(const ExportArgs& a) {
    infer::ExportOptions options;
    options.format = infer::export_format_from_name(a.format);
    options.out = a.out;
    const auto source = infer::ModelSource::open(a.model_path);
    options.dtype = a.type.empty() ? source->main_dtype() : dtype_from_name(a.type);
    // The weights stay in the file's dtypes until the writer converts each tensor once.
    const model::Weights weights = infer::load_weights(*source, backend::get_backend("cpu"), std::nullopt);
    infer::export_model(*source, weights, options);
    log_info("export: ", infer::format_name(source->format()), " ", source->path(), " -> ", a.out,
             " (", a.format, ", ", dtype_name(options.dtype), ")");
}

}  // namespace

void add_export_command(CLI::App& app) {
    auto a = std::make_shared<ExportArgs>();
    CLI::App* cmd = app.add_subcommand("export", "Write a model as a Hugging Face directory or a GGUF file");
    cmd->add_option("--model", a->model_path,
                    "a tandem run or checkpoint, a Hugging Face model directory, or a .gguf file")
        ->required();
    cmd->add_option("--format", a->format, "hf or gguf")->capture_default_str();
    cmd->add_option("--type", a->type,
                    "f32, f16, bf16, q8_0 or q4_0 for the matrices (norms stay f32; default: the "
                    "source's)");
    cmd->add_option("--out", a->out, "the directory (hf) or file (gguf) to create; never replaced")
        ->required();
    cmd->callback([a] { run_export(*a); });
}

}  // namespace tandem::cli

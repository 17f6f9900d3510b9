// `tandem sft`: fine-tunes a model on chat JSON Lines (train/sft.h). Training keys are those of
// `tandem train` (--config FILE, then KEY=VALUE); progress looks the same. A resumed run takes
// its model, data and settings from RUN/config.json unless the command line gives them.
#include <filesystem>
#include <memory>

#include "backend/registry.h"
#include "cli/commands.h"
#include "cli/options.h"
#include "cli/train_progress.h"
#include "core/error.h"
#include "core/log.h"
#include "infer/model_source.h"
#include "io/atomic_file.h"
#include "io/json_fields.h"
#include "train/faults.h"
#include "train/sft.h"

namespace tandem::cli {

namespace fs = std::filesystem;

namespace {

struct SftArgs {
    std::string model, data, run_dir, config_path, device, bad_lines = "error";
    bool resume = false;
    std::optional<double> val_fraction;
    int64_t stop_after = 0;
    std::vector<std::string> overrides, faults;
};

void run_sft_command(const SftArgs& a) {
    set_log_details(true);
    nlohmann::json config = nlohmann::json::object();
    std::string origin = "configuration";
    const std::string run_config = (fs::path(a.run_dir) / "config.json").string();
    if (!a.config_path.empty()) {
        config = io::parse_json_text(io::read_file(a.config_path), a.config_path);
        origin = a.config_path;
    } else if (a.resume && fs::exists(run_config)) {
        config = io::parse_json_text(io::read_file(run_config), run_config);
        origin = run_config;
    }
    std::string data = a.data;
    if (config.is_object() && config.contains("data")) {  // recorded by the run, not a setting
        if (data.empty()) data = config["data"].get<std::string>();
        config.erase("data");
    }
    if (!a.model.empty()) config["init"] = a.model;
    train::apply_overrides(config, a.overrides);
    if (!a.overrides.empty()) origin += " with the command line's KEY=VALUE";
    if (!a.device.empty()) config["device"] = a.device;
    if (data.empty())
        throw Error(
            "--data is required (JSON Lines of {\"messages\": [...]} or {\"prompt\", "
            "\"completion\"})");

    train::SftOptions options;
    options.config = train::TrainConfig::from_json(config, origin);
    if (options.config.init.empty())
        throw Error("--model is required (a Hugging Face directory, a .gguf file or a tandem run)");
    options.data_path = data;
    options.run_dir = a.run_dir;
    options.resume = a.resume ? train::ResumeMode::Required : train::ResumeMode::Never;
    options.stop_after = a.stop_after;
    options.faults = a.faults;
    for (const std::string& spec : train::FaultPlan::specs_from_environment())
        options.faults.push_back(spec);
    options.bad_lines = train::bad_line_policy_from_string(a.bad_lines);
    options.val_fraction = a.val_fraction;
    options.load_init = [](const std::string& path) {
        const auto source = infer::ModelSource::open(path);
        return train::InitialWeights{std::make_unique<model::Weights>(infer::load_weights(
                                         *source, backend::get_backend("cpu"), std::nullopt)),
                                     source->tokenizer(), source->path()};
    };

    train::TrainEvents events = train_progress_events(options.config.log_every);
    const train::SftResult result = train::run_sft(options, events);
    end_train_progress();
    if (result.train.rank != 0) return;
    if (result.n_skipped > 0)
        log_warn(result.n_skipped, " bad line(s) of ", data,
                 " skipped (--bad-lines skip); see the warnings above");
    log_info("fine-tuned ", result.train.final_step, " steps on ", result.n_train,
             " examples; newest checkpoint: ",
             result.train.last_checkpoint.empty() ? "none" : result.train.last_checkpoint);
}

}  // namespace

void add_sft_command(CLI::App& app) {
    auto a = std::make_shared<SftArgs>();
    CLI::App* cmd = app.add_subcommand(
        "sft", "Fine-tune a model on conversations (loss on the assistant's tokens)");
    cmd->add_option(
        "--model", a->model,
        "the model to fine-tune: a Hugging Face directory, a .gguf file or a tandem run");
    cmd->add_option("--data", a->data,
                    "JSON Lines: {\"messages\": [{\"role\", \"content\"}, ...]} or {\"prompt\", "
                    "\"completion\"} per line");
    cmd->add_option("--out", a->run_dir, "run directory (config, metrics, loss plot, checkpoints)")
        ->required();
    cmd->add_option("--config", a->config_path,
                    "training configuration (JSON object, the keys of `tandem train`)");
    cmd->add_flag("--resume", a->resume, "continue from the newest valid checkpoint in --out");
    cmd->add_option("--bad-lines", a->bad_lines,
                    "error: refuse data with bad lines, naming them (default); skip: report each, "
                    "train without them")
        ->check(CLI::IsMember({"error", "skip"}));
    between(cmd->add_option("--val-fraction", a->val_fraction,
                            "examples held out for the evaluation loss (default 0.05; a resumed "
                            "run keeps its own)"),
            0, 0.99);
    cmd->add_option("--device", a->device, "cpu, cuda, reference or auto (overrides the config)");
    cmd->add_option("--inject", a->faults,
                    "inject a fault, KIND@STEP[:ARG], as `tandem train --inject`")
        ->allow_extra_args(false);
    positive(cmd->add_option("--stop-after", a->stop_after,
                             "end cleanly after this step, with a checkpoint"));
    cmd->add_option("overrides", a->overrides,
                    "KEY=VALUE training settings (steps=200 lr=3e-5 seq_len=512 ...)");
    cmd->callback([a] { run_sft_command(*a); });
}

}  // namespace tandem::cli

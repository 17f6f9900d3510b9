// `tandem train`: reads the configuration (file, then KEY=VALUE overrides), runs the training
// loop, and shows progress: a live line on a terminal, a plain line every log_every steps
// otherwise.
#include <cstdio>
#include <filesystem>
#include <memory>

#include "cli/commands.h"
#include "cli/progress_bar.h"
#include "core/error.h"
#include "core/log.h"
#include "io/atomic_file.h"
#include "train/trainer.h"

namespace tandem::cli {

namespace fs = std::filesystem;

namespace {

struct TrainArgs {
    std::string config_path, data_dir, run_dir, device;
    bool resume = false;
    int64_t stop_after = 0;
    std::vector<std::string> overrides;
};

nlohmann::json read_json_file(const std::string& path) {
    try {
        return nlohmann::json::parse(io::read_file(path));
    } catch (const nlohmann::json::exception& e) {
        throw Error(path, ": not valid JSON: ", e.what());
    }
}

void run_train(const TrainArgs& a) {
    // The configuration: the file given, else (resuming) the run's own, else the defaults.
    nlohmann::json config = nlohmann::json::object();
    std::string origin = "configuration";
    std::string data_dir = a.data_dir;
    const std::string run_config = (fs::path(a.run_dir) / "config.json").string();
    if (!a.config_path.empty()) {
        config = read_json_file(a.config_path);
        origin = a.config_path;
    } else if (a.resume && fs::exists(run_config)) {
        config = read_json_file(run_config);
        origin = run_config;
    }
    if (config.is_object() && config.contains("data")) {  // recorded by the run, not a setting
        if (data_dir.empty()) data_dir = config["data"].get<std::string>();
        config.erase("data");
    }
    train::apply_overrides(config, a.overrides);
    if (!a.overrides.empty()) origin += " with the command line's KEY=VALUE";
    if (!a.device.empty()) config["device"] = a.device;
    if (data_dir.empty()) throw Error("--data is required (a directory written by `tandem prepare`)");

    train::TrainOptions options;
    options.config = train::TrainConfig::from_json(config, origin);
    options.data_dir = data_dir;
    options.run_dir = a.run_dir;
    options.resume = a.resume;
    options.stop_after = a.stop_after;

    const bool live = stderr_is_terminal();
    const int64_t log_every = options.config.log_every;
    train::TrainEvents events;
    events.on_message = [&](const std::string& text) {
        if (live) std::fputs("\r\033[K", stderr);
        log_info(text);
    };
    events.on_step = [&](const train::StepReport& r) {
        char line[256];
        std::snprintf(line, sizeof line, "step %lld/%lld | loss %.4f | lr %.2e | %.0f tok/s | ETA %s",
                      (long long)r.step, (long long)r.total_steps, r.loss, r.lr, r.tokens_per_s,
                      format_duration(r.seconds_left).c_str());
        std::string text = line;
        if (r.val_loss) {
            std::snprintf(line, sizeof line, " | val %.4f", *r.val_loss);
            text += line;
        }
        if (live) {
            std::fprintf(stderr, "\r\033[K%s", text.c_str());
            if (r.val_loss) std::fputc('\n', stderr);
            std::fflush(stderr);
        } else if (r.step % log_every == 0 || r.val_loss) {
            log_info(text);
        }
    };
    const train::TrainResult result = train::run_training(options, events);
    if (live) std::fputs("\r\033[K", stderr);
    log_info("trained ", result.final_step, " steps of a ", result.n_params, "-parameter model; newest checkpoint: ",
             result.last_checkpoint.empty() ? "none" : result.last_checkpoint);
}

}  // namespace

void add_train_command(CLI::App& app) {
    auto a = std::make_shared<TrainArgs>();
    CLI::App* cmd = app.add_subcommand("train", "Train a model on prepared token shards");
    cmd->add_option("--config", a->config_path, "training configuration (JSON object)");
    cmd->add_option("--data", a->data_dir, "a directory written by `tandem prepare`");
    cmd->add_option("--out", a->run_dir, "run directory (config, metrics, loss plot, checkpoints)")->required();
    cmd->add_flag("--resume", a->resume, "continue from the newest valid checkpoint in --out");
    cmd->add_option("--device", a->device, "cpu, cuda, reference or auto (overrides the config)");
    cmd->add_option("--stop-after", a->stop_after, "end cleanly after this step, with a checkpoint")
        ->check(CLI::PositiveNumber);
    cmd->add_option("overrides", a->overrides, "KEY=VALUE settings over the configuration (steps=200 lr=3e-4 ...)");
    cmd->callback([a] { run_train(*a); });
}

}  // namespace tandem::cli

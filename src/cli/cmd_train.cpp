// `tandem train`: reads the configuration (file, then KEY=VALUE overrides), runs the training
// loop, and shows progress: a live line on a terminal, a plain line every log_every steps
// otherwise. With --supervise it runs the loop in a child process and restarts it after crashes.
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <sstream>

#include "backend/registry.h"
#include "cli/commands.h"
#include "cli/options.h"
#include "cli/supervisor.h"
#include "cli/train_progress.h"
#include "core/error.h"
#include "core/log.h"
#include "dist/mpi_communicator.h"
#include "infer/model_source.h"
#include "io/atomic_file.h"
#include "train/faults.h"
#include "train/trainer.h"

namespace tandem::cli {

namespace fs = std::filesystem;

namespace {

struct TrainArgs {
    std::string config_path, data_dir, run_dir, device;
    std::string resume;  // "": fresh; "required" (plain --resume) or "auto"
    int64_t stop_after = 0;
    int supervise = 0;
    int ranks = 0;            // --supervise around `mpirun -np ranks`
    std::string mpirun_args;  // more arguments for that mpirun, split at spaces
    std::vector<std::string> overrides, faults;
};

nlohmann::json read_json_file(const std::string& path) {
    try {
        return nlohmann::json::parse(io::read_file(path));
    } catch (const nlohmann::json::exception& e) {
        throw Error(path, ": not valid JSON: ", e.what());
    }
}

void run_train(const TrainArgs& a) {
    set_log_details(true);  // train's output is its log: the kernel choice belongs in it
    // The configuration: the file given, else (resuming) the run's own, else the defaults.
    nlohmann::json config = nlohmann::json::object();
    std::string origin = "configuration";
    std::string data_dir = a.data_dir;
    const std::string run_config = (fs::path(a.run_dir) / "config.json").string();
    if (!a.config_path.empty()) {
        config = read_json_file(a.config_path);
        origin = a.config_path;
    } else if (!a.resume.empty() && fs::exists(run_config)) {
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
    options.resume = a.resume.empty() ? train::ResumeMode::Never
                     : a.resume == "auto" ? train::ResumeMode::Auto
                                          : train::ResumeMode::Required;
    options.stop_after = a.stop_after;
    options.faults = a.faults;
    options.load_init = [](const std::string& path) {
        const auto source = infer::ModelSource::open(path);
        // Kept in the file's dtypes on the host; the model converts once to its compute dtype.
        return train::InitialWeights{
            std::make_unique<model::Weights>(
                infer::load_weights(*source, backend::get_backend("cpu"), std::nullopt)),
            source->tokenizer(), source->path()};
    };
    for (const std::string& spec : train::FaultPlan::specs_from_environment()) options.faults.push_back(spec);
    if (supervised_attempt() > 0 && !options.faults.empty()) {
        // A fault that killed the first attempt would kill every restart at the same step.
        log_info("supervised restart ", supervised_attempt(), ": faults are injected into the first attempt only");
        options.faults.clear();
    }

    train::TrainEvents events = train_progress_events(options.config.log_every);
    events.on_hang = [](const std::string& diagnostic) {
        end_train_progress();
        log_warn(diagnostic, "; exiting with code ", kExitHung, " so that a supervisor (--supervise) restarts the run");
        std::_Exit(kExitHung);
    };
    train::TrainResult result;
    try {
        result = train::run_training(options, events);
    } catch (const Error& e) {
        // A peer rank died or hung: not this run's own error, and a restart of the whole job
        // from its checkpoint can go on, so the supervisor must tell the two apart.
        if (!dist::collective_failed()) throw;
        end_train_progress();
        log_warn(e.what(), "; exiting with code ", kExitPeerLost, " (a supervisor restarts the job)");
        std::exit(kExitPeerLost);
    }
    end_train_progress();
    if (result.rank == 0)
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
    cmd->add_option("--resume", a->resume,
                    "continue from the newest valid checkpoint in --out; --resume auto: continue if there is "
                    "one, else start afresh")
        ->expected(0, 1)
        ->default_str("required")
        ->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
    at_least(cmd->add_option("--supervise", a->supervise,
                             "run the trainer as a child process and restart it (with --resume auto) up to N "
                             "times after a crash or a hang"),
             0);
    at_least(cmd->add_option("--ranks", a->ranks,
                             "with --supervise: run the trainer as `mpirun -np N`, and restart the whole job "
                             "from its newest valid checkpoint when a rank dies"),
             1);
    cmd->add_option("--mpirun-args", a->mpirun_args,
                    "with --ranks: more arguments for mpirun, e.g. \"--hostfile hosts\" (split at spaces)");
    cmd->add_option("--inject", a->faults,
                    "inject a fault, KIND@STEP[:ARG]: nan@K[:grads|loss|PARAM], spike@K[:FACTOR], "
                    "kill@K[:step|eval|checkpoint], hang@K[:SECONDS], ckpt-fail@K, ckpt-corrupt@K, "
                    "ckpt-truncate@K (also TANDEM_FAULTS, comma-separated)")
        ->allow_extra_args(false);
    cmd->add_option("--device", a->device, "cpu, cuda, reference or auto (overrides the config)");
    positive(cmd->add_option("--stop-after", a->stop_after, "end cleanly after this step, with a checkpoint"));
    cmd->add_option("overrides", a->overrides, "KEY=VALUE settings over the configuration (steps=200 lr=3e-4 ...)");
    cmd->callback([a] {
        // `--resume steps=2000`: the option's optional value took the first KEY=VALUE setting.
        if (a->resume.find('=') != std::string::npos) {
            a->overrides.insert(a->overrides.begin(), a->resume);
            a->resume = "required";
        }
        if (!a->resume.empty() && a->resume != "auto" && a->resume != "required")
            throw CLI::ValidationError("--resume", "takes no value or 'auto', not '" + a->resume + "'");
        if ((a->ranks > 0 || !a->mpirun_args.empty()) && a->supervise == 0)
            throw CLI::ValidationError("--ranks", "--ranks and --mpirun-args go with --supervise N (without it, "
                                                  "start the job with scripts/mpirun -np N tandem train ...)");
        if (a->supervise > 0 && supervised_attempt() < 0) {
            std::vector<std::string> mpirun_args;
            std::istringstream words(a->mpirun_args);
            for (std::string word; words >> word;) mpirun_args.push_back(word);
            const int code = supervise_training({.max_restarts = a->supervise, .ranks = a->ranks,
                                                 .mpirun_args = std::move(mpirun_args)});
            if (code != 0) std::exit(code);  // the trainer has said why
            return;
        }
        run_train(*a);
    });
}

}  // namespace tandem::cli

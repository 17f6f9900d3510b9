// One training run: setup (fresh or resumed), the step loop with gradient accumulation,
// evaluation on fixed validation batches, metrics, the loss plot and checkpoints.
#include "train/trainer.h"

#include <chrono>
#include <cmath>
#include <filesystem>

#include "backend/registry.h"
#include "core/error.h"
#include "io/atomic_file.h"
#include "model/config.h"
#include "model/model.h"
#include "train/adamw.h"
#include "train/checkpoint.h"
#include "io/checkpoint_dir.h"
#include "train/data_loader.h"
#include "train/loss_plot.h"
#include "train/lr_schedule.h"
#include "train/metrics_log.h"

namespace tandem::train {

namespace fs = std::filesystem;

nlohmann::json resolve_model_json(const nlohmann::json& spec, int64_t vocab_size) {
    nlohmann::json json;
    bool explicit_vocab = false;
    if (spec.is_string()) {
        json = model::config_to_json(model::preset_config(spec.get<std::string>()));
    } else {
        if (spec.contains("preset")) {
            json = model::config_to_json(model::preset_config(spec.at("preset").get<std::string>()));
            for (auto it = spec.begin(); it != spec.end(); ++it)
                if (it.key() != "preset") json[it.key()] = it.value();
        } else {
            json = spec;
        }
        explicit_vocab = spec.contains("vocab_size");
    }
    if (!explicit_vocab) json["vocab_size"] = vocab_size;
    const model::ModelConfig config = model::config_from_json(json);
    if (config.vocab_size < vocab_size)
        throw Error("model vocab_size ", config.vocab_size, " is smaller than the tokenizer's ", vocab_size,
                    " ids (drop vocab_size from the model to follow the tokenizer)");
    return model::config_to_json(config);
}

namespace {

// Splits [B, T + 1] windows into inputs [B, T] and next-token targets [B, T].
void split_windows(const std::vector<int32_t>& windows, int64_t B, int64_t T,
                   std::vector<int32_t>& inputs, std::vector<int32_t>& targets) {
    for (int64_t b = 0; b < B; ++b) {
        const int32_t* row = windows.data() + b * (T + 1);
        std::copy(row, row + T, inputs.begin() + b * T);
        std::copy(row + 1, row + T + 1, targets.begin() + b * T);
    }
}

}  // namespace

TrainResult run_training(const TrainOptions& options, const TrainEvents& events) {
    const TrainConfig& cfg = options.config;
    cfg.validate();
    const auto say = [&](const std::string& text) {
        if (events.on_message) events.on_message(text);
    };
    const std::string checkpoints = (fs::path(options.run_dir) / "checkpoints").string();

    // Where to start: a fresh run refuses to mix with an earlier one's checkpoints.
    std::optional<io::CheckpointInfo> resume_from;
    if (options.resume) {
        resume_from = io::newest_valid_checkpoint(checkpoints);
        if (!resume_from) throw Error(options.run_dir, ": --resume found no valid checkpoint in ", checkpoints);
    } else if (!io::list_checkpoints(checkpoints).empty()) {
        throw Error(options.run_dir, ": already holds checkpoints; pass --resume to continue it, or choose another --out");
    }

    // Data first: its tokenizer fixes the vocabulary.
    backend::Backend& be = backend::get_backend(cfg.device);
    DataLoaderOptions data_options{.dir = options.data_dir, .split = Split::Train,
                                   .batch_size = cfg.batch_size, .seq_len = cfg.seq_len,
                                   .seed = cfg.seed};
    DataLoader train_data(data_options);
    const std::string tokenizer_json = io::read_file((fs::path(options.data_dir) / "tokenizer.json").string());
    std::optional<DataLoader> val_data;
    if (cfg.eval_batches > 0) {
        try {
            DataLoaderOptions val_options = data_options;
            val_options.split = Split::Val;
            val_data.emplace(val_options);
        } catch (const Error& e) {
            say(std::string("no evaluation: ") + e.what());
        }
    }

    const nlohmann::json model_json = resolve_model_json(cfg.model, train_data.vocab_size());
    const model::ModelConfig model_config = model::config_from_json(model_json);
    if (cfg.seq_len > model_config.max_seq_len)
        throw Error("seq_len ", cfg.seq_len, " exceeds the model's max_seq_len ", model_config.max_seq_len,
                    " (lower seq_len or set model.max_seq_len)");

    model::Model model(model_config, be, DType::F32, cfg.batch_size, cfg.seq_len);
    AdamW optimizer(be, model.layout(), DType::F32,
                    {.beta1 = float(cfg.beta1), .beta2 = float(cfg.beta2), .eps = float(cfg.eps),
                     .weight_decay = float(cfg.weight_decay), .grad_clip = float(cfg.grad_clip)});
    TrainingState state;
    state.seed = cfg.seed;
    state.train_config = cfg.to_json();
    if (resume_from) {
        load_checkpoint_weights(resume_from->path, model);
        state = load_checkpoint_state(resume_from->path, optimizer);
        state.train_config = cfg.to_json();
        train_data.set_cursor(state.cursor);
        say("resumed from " + resume_from->path);
    } else {
        model.init(cfg.seed);
    }

    fs::create_directories(options.run_dir);
    nlohmann::json resolved = cfg.to_json();
    resolved["model"] = model_json;
    resolved["data"] = fs::absolute(options.data_dir).string();
    io::write_file_atomic((fs::path(options.run_dir) / "config.json").string(), resolved.dump(2) + "\n");
    const std::string metrics_path = (fs::path(options.run_dir) / "metrics.jsonl").string();
    const std::string plot_path = (fs::path(options.run_dir) / "loss.svg").string();
    MetricsLog metrics(metrics_path, state.step);

    const int64_t B = cfg.batch_size, T = cfg.seq_len;
    const LrSchedule schedule{cfg.lr, cfg.lr_min, cfg.warmup_steps, cfg.steps};
    std::vector<int32_t> windows(B * (T + 1)), inputs(B * T), targets(B * T);

    const auto evaluate = [&]() -> std::optional<double> {
        if (!val_data) return std::nullopt;
        const int64_t n = std::min(cfg.eval_batches, val_data->n_fixed_batches());
        if (n == 0) return std::nullopt;
        double total = 0;
        for (int64_t i = 0; i < n; ++i) {
            val_data->fixed_batch(i, windows);
            split_windows(windows, B, T, inputs, targets);
            total += model.forward(inputs, targets, B, T);
        }
        return total / double(n);
    };

    TrainResult result;
    result.n_params = model.layout().n_params();
    const int64_t last_step = options.stop_after > 0 ? std::min(options.stop_after, cfg.steps) : cfg.steps;
    double recent_step_seconds = 0;  // exponential average, for the ETA
    std::string last_checkpoint = resume_from ? resume_from->path : "";

    for (int64_t step = state.step + 1; step <= last_step; ++step) {
        const auto begin = std::chrono::steady_clock::now();
        model.zero_grad();
        double loss = 0;
        for (int64_t micro = 0; micro < cfg.grad_accum; ++micro) {
            train_data.next_batch(windows);
            split_windows(windows, B, T, inputs, targets);
            loss += model.forward(inputs, targets, B, T);
            model.backward();
        }
        loss /= double(cfg.grad_accum);
        // backward() adds the gradient of each micro-batch's mean; the step wants their mean.
        if (cfg.grad_accum > 1) be.scale(model.grads(), 1.0f / float(cfg.grad_accum));
        const double lr = schedule.lr_at(step);
        const double grad_norm = optimizer.step(model.params(), model.grads(), float(lr));
        be.synchronize();
        const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - begin).count();
        recent_step_seconds = recent_step_seconds == 0 ? seconds : 0.9 * recent_step_seconds + 0.1 * seconds;

        state.step = step;
        state.cursor = train_data.cursor();
        state.tokens_seen += B * T * cfg.grad_accum;

        StepReport report{step, cfg.steps, loss, lr, grad_norm, double(B * T * cfg.grad_accum) / seconds,
                          recent_step_seconds * double(last_step - step), std::nullopt};
        nlohmann::json record = {{"step", step}, {"loss", loss}, {"lr", lr}, {"grad_norm", grad_norm},
                                 {"tokens_per_s", report.tokens_per_s}};
        if (!std::isfinite(loss)) record["loss"] = nullptr;  // JSON has no NaN
        const bool is_last = step == last_step;
        if (step % cfg.eval_every == 0 || is_last) {
            report.val_loss = evaluate();
            if (report.val_loss) {
                state.val_loss = report.val_loss;
                record["val_loss"] = *report.val_loss;
            }
        }
        metrics.append(record);
        if (report.val_loss || is_last)
            io::write_file_atomic(plot_path, render_loss_svg(read_metrics(metrics_path)));
        if (events.on_step) events.on_step(report);

        if (step % cfg.checkpoint_every == 0 || is_last) {
            last_checkpoint = save_checkpoint(checkpoints, model, optimizer, state, tokenizer_json);
            say("checkpoint " + last_checkpoint);
        }
    }
    result.final_step = state.step;
    result.last_checkpoint = last_checkpoint;
    result.val_loss = state.val_loss;
    return result;
}

}  // namespace tandem::train

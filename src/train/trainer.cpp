// One training run: setup (fresh or resumed), the step loop around TrainStep (train_step.h), the
// anomaly policies, fault injection, the watchdog, evaluation on fixed validation
// batches, metrics, the loss plot, and checkpoints written in the background. Under mpirun every
// rank runs it on batch_size / n_ranks rows of each batch; rank 0 alone speaks and writes files.
#include "train/trainer.h"

#include <array>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <limits>
#include <map>
#include <memory>
#include <thread>

#include "backend/registry.h"
#include "core/error.h"
#include "core/log.h"
#include "dist/communicator.h"
#include "dist/mpi_communicator.h"
#include "io/atomic_file.h"
#include "io/checkpoint_dir.h"
#include "io/tokenizer_files.h"
#include "model/config.h"
#include "model/model.h"
#include "train/adamw.h"
#include "train/anomaly_guard.h"
#include "train/batch_source.h"
#include "train/checkpoint.h"
#include "train/checkpoint_writer.h"
#include "train/data_loader.h"
#include "train/faults.h"
#include "train/grad_exchange.h"
#include "train/loss_plot.h"
#include "train/lr_schedule.h"
#include "train/metrics_log.h"
#include "train/train_step.h"
#include "train/watchdog.h"
#include "train/zero_optimizer.h"

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

// Token shards hold ids of the tokenizer `prepare` ran with; fine-tuning a model on ids of
// another tokenizer trains garbage without an error anywhere, so the two must be the same.
void check_same_tokenizer(const InitialWeights& init, const std::string& data_tokenizer_path) {
    const io::BpeModel data = io::load_hf_tokenizer_json(data_tokenizer_path);
    const io::BpeModel& model = init.tokenizer;
    const auto same_added = [&] {
        if (data.added.size() != model.added.size()) return false;
        for (size_t i = 0; i < data.added.size(); ++i)
            if (data.added[i].id != model.added[i].id || data.added[i].content != model.added[i].content)
                return false;
        return true;
    };
    const auto same_merges = [&] {
        if (data.merges.size() != model.merges.size()) return false;
        for (size_t i = 0; i < data.merges.size(); ++i)
            if (data.merges[i].left != model.merges[i].left || data.merges[i].right != model.merges[i].right ||
                data.merges[i].merged != model.merges[i].merged)
                return false;
        return true;
    };
    if (data.tokens != model.tokens || !same_merges() || !same_added())
        throw Error("init=", init.source, ": the data in ", data_tokenizer_path,
                    " was prepared with another tokenizer than the model's (run tandem prepare "
                    "--tokenizer ", init.source, " on your text first)");
}

double seconds_since(std::chrono::steady_clock::time_point t) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

// Each rank's share of the batch. The global batch stays batch_size, so that a run on N ranks
// reads the same windows and takes the same steps as one on a single rank.
int64_t local_batch_size(const TrainConfig& cfg, const dist::Communicator& comm) {
    if (cfg.batch_size % comm.size() != 0)
        throw Error("batch_size ", cfg.batch_size, " is not divisible by the ", comm.size(),
                    " ranks of mpirun -np ", comm.size(), " (each rank takes batch_size / ranks rows; use a ",
                    "batch_size that is a multiple of ", comm.size(), ")");
    return cfg.batch_size / comm.size();
}

// Where to start: the newest valid checkpoint, or nothing for a fresh run. Only rank 0 repairs
// the checkpoint directory (the others wait for it, then read the same one).
std::optional<io::CheckpointInfo> find_start(const TrainOptions& options, const std::string& checkpoints,
                                             dist::Communicator& comm,
                                             const std::function<void(const std::string&)>& say) {
    if (comm.rank() == 0)
        for (const std::string& line : io::recover_checkpoint_dirs(checkpoints)) say(line);
    comm.barrier();
    switch (options.resume) {
        case ResumeMode::Never:
            if (!io::list_checkpoints(checkpoints).empty())
                throw Error(options.run_dir,
                            ": already holds checkpoints; pass --resume to continue it, or choose another --out");
            return std::nullopt;
        case ResumeMode::Required: {
            auto newest = io::newest_valid_checkpoint(checkpoints);
            if (!newest) throw Error(options.run_dir, ": --resume found no valid checkpoint in ", checkpoints);
            return newest;
        }
        case ResumeMode::Auto: {
            auto newest = io::newest_valid_checkpoint(checkpoints);
            if (!newest && !io::list_checkpoints(checkpoints).empty())
                say("--resume auto: no checkpoint in " + checkpoints + " is valid (see the warnings); starting afresh");
            return newest;
        }
    }
    return std::nullopt;
}

// The token shards' training split, unless the run brings its own data (TrainOptions::make_data).
std::optional<DataLoader> open_train_data(const TrainOptions& options, int64_t local_batch,
                                          const dist::Communicator& comm) {
    if (options.make_data) return std::nullopt;
    return DataLoader({.dir = options.data_dir, .split = Split::Train, .batch_size = local_batch,
                       .seq_len = options.config.seq_len, .seed = options.config.seed, .rank = comm.rank(),
                       .n_ranks = comm.size()});
}

// One run of the training loop, with its guard, faults, watchdog and checkpoint writer.
class TrainingRun {
public:
    TrainingRun(const TrainOptions& options, const TrainEvents& events);
    TrainResult run();

private:
    bool is_rank0() const { return comm_->rank() == 0; }
    // Every rank takes the same decisions on the same reduced values; rank 0 alone reports them.
    void say(const std::string& text) const {
        if (is_rank0() && events_.on_message) events_.on_message(text);
    }
    void warn(const std::string& text) const {
        if (!is_rank0()) return;
        if (events_.on_warning) events_.on_warning(text);
        else log_warn(text);
    }
    // A line in metrics.jsonl for something other than a step, and a warning if it is bad news.
    void record_event(const std::string& event, int64_t step, const std::string& reason, const std::string& action,
                      nlohmann::json extra = nlohmann::json::object());
    std::optional<double> evaluate(int64_t step);
    std::optional<double> evaluate_run_data(int64_t step);
    DataCursor data_cursor() const { return data_ ? data_->cursor() : train_data_->cursor(); }
    void inject_before_forward(int64_t step);
    void inject_after_backward(int64_t step, double& loss);
    // Copies the state to host memory and hands it to the writer. Weights that are not finite
    // are never saved: false, with a warning, and the older checkpoints stay the newest.
    bool checkpoint();
    // Reports the writes that ended (with `wait`: after the one in flight ends too).
    void collect_checkpoints(bool wait);
    // The anomaly policy for `step`, whose update the guard refused; returns the step to continue
    // after (another one than `step` after a rollback). Sets is_applied when the update was
    // taken after all.
    int64_t handle_anomaly(int64_t step, const StepResult& result, double lr, bool& is_applied);
    [[noreturn]] void stop_with_last_good_state(int64_t step, const std::string& why);
    // Rank 0's weights to every rank, through host memory (the communicator takes host tensors).
    void broadcast_params();

    const TrainOptions& options_;
    const TrainConfig& cfg_;
    const TrainEvents& events_;
    const std::string checkpoints_;
    backend::Backend& be_;
    FaultPlan faults_;
    std::unique_ptr<dist::Communicator> comm_;  // before the loaders: they take its rank
    int64_t local_batch_;                        // batch_size / ranks
    std::optional<io::CheckpointInfo> resume_from_;
    std::optional<DataLoader> train_data_;  // token shards, or
    std::unique_ptr<RunData> data_;         // the run's own data (options.make_data)
    std::optional<DataLoader> val_data_;
    std::string tokenizer_json_;
    std::string tokenizer_config_json_;  // "": checkpoints have none
    nlohmann::json model_json_;
    std::unique_ptr<model::Model> model_;
    std::unique_ptr<AdamW> optimizer_;  // with zero=1: over this rank's range only
    std::unique_ptr<ZeroAdamW> zero_;   // zero=1
    TrainingState state_;
    AnomalyPolicy policy_;
    AnomalyGuard guard_;
    // Snapshot memory is reused (see take_snapshot): a buffer is free when neither the writer
    // nor last_good_ holds it.
    std::shared_ptr<CheckpointSnapshot> free_snapshot_buffer();
    std::vector<std::shared_ptr<CheckpointSnapshot>> snapshot_buffers_;
    std::shared_ptr<const CheckpointSnapshot> last_good_;  // for rollback
    std::unique_ptr<MetricsLog> metrics_;
    std::string metrics_path_, plot_path_;
    std::unique_ptr<CheckpointWriter> writer_;
    std::map<int64_t, double> stall_by_step_;  // checkpoints in flight: the stall they cost
    std::string last_checkpoint_;
    std::unique_ptr<Watchdog> watchdog_;
    std::unique_ptr<TrainStep> step_;
    std::unique_ptr<GradientExchange> exchange_;  // compress= and local_steps=
    std::vector<int32_t> windows_;  // evaluation
    Batch eval_batch_;
};

TrainingRun::TrainingRun(const TrainOptions& options, const TrainEvents& events)
    : options_(options),
      cfg_(options.config),
      events_(events),
      checkpoints_((fs::path(options.run_dir) / "checkpoints").string()),
      be_(backend::get_backend(cfg_.device)),
      faults_(options.faults),
      comm_(dist::make_communicator({.deadline_seconds = cfg_.dist_timeout})),
      local_batch_(local_batch_size(cfg_, *comm_)),
      resume_from_(find_start(options, checkpoints_, *comm_, [this](const std::string& t) { say(t); })),
      train_data_(open_train_data(options, local_batch_, *comm_)),
      policy_(anomaly_policy_from_string(cfg_.anomaly_policy)),
      guard_({.window = cfg_.anomaly_window, .zscore = cfg_.anomaly_zscore,
              .loss_factor = cfg_.anomaly_loss_factor, .norm_factor = cfg_.anomaly_norm_factor,
              .max_consecutive = cfg_.anomaly_max_consecutive}) {
    // The communicators reduce host memory; the CUDA path will come with a device communicator.
    if (comm_->size() > 1 && be_.name() == "cuda")
        throw Error("device=cuda under mpirun (", comm_->size(), " ranks): data-parallel training runs on the cpu ",
                    "backend for now (set device=cpu, or train on one rank)");
    if (!faults_.empty()) say("fault injection: " + std::to_string(options.faults.size()) + " fault(s) planned");
    // Data first: its tokenizer fixes the vocabulary.
    if (options.make_data) {
        data_ = options.make_data({.local_batch = local_batch_, .seq_len = cfg_.seq_len, .rank = comm_->rank(),
                                   .n_ranks = comm_->size()});
        tokenizer_json_ = data_->tokenizer_json();
        tokenizer_config_json_ = data_->tokenizer_config_json();
    } else {
        tokenizer_json_ = io::read_file((fs::path(options.data_dir) / "tokenizer.json").string());
    }
    // A run without evaluation is the user's choice (eval_every=0), never a silent consequence
    // of a data directory whose validation split came out empty. Run data evaluates itself.
    if (!data_ && cfg_.eval_every > 0 && cfg_.eval_batches > 0) {
        try {
            // Unsharded: evaluate() picks each rank's fixed batches itself.
            val_data_.emplace(DataLoaderOptions{.dir = options.data_dir, .split = Split::Val,
                                                .batch_size = local_batch_, .seq_len = cfg_.seq_len,
                                                .seed = cfg_.seed});
        } catch (const Error& e) {
            throw Error(e.what(), "; training evaluates on the validation split: re-run `tandem prepare` ",
                        "with a larger --val-fraction or more data, or set eval_every=0 to train without ",
                        "evaluation");
        }
    } else if (cfg_.eval_every <= 0 || cfg_.eval_batches <= 0) {
        say("no evaluation (eval_every=0 or eval_batches=0)");
    }
    InitialWeights init;
    if (!cfg_.init.empty() && !resume_from_) {
        if (!options.load_init) throw Error("init=", cfg_.init, ": this program cannot load models");
        init = options.load_init(cfg_.init);
        if (!data_) check_same_tokenizer(init, (fs::path(options.data_dir) / "tokenizer.json").string());
        model_json_ = model::config_to_json(init.weights->config());
    } else {
        model_json_ = resolve_model_json(cfg_.model, data_ ? data_->vocab_size() : train_data_->vocab_size());
    }
    const model::ModelConfig model_config = model::config_from_json(model_json_);
    if (cfg_.seq_len > model_config.max_seq_len)
        throw Error("seq_len ", cfg_.seq_len, " exceeds the model's max_seq_len ", model_config.max_seq_len,
                    " (lower seq_len or set model.max_seq_len)");

    model_ = std::make_unique<model::Model>(model_config, be_, DType::F32, local_batch_, cfg_.seq_len);
    const int64_t n_params = model_->layout().n_params();
    optimizer_ = std::make_unique<AdamW>(
        be_, model_->layout(), DType::F32,
        AdamWConfig{.beta1 = float(cfg_.beta1), .beta2 = float(cfg_.beta2), .eps = float(cfg_.eps),
                    .weight_decay = float(cfg_.weight_decay), .grad_clip = float(cfg_.grad_clip)},
        cfg_.zero ? zero_shard(n_params, comm_->rank(), comm_->size()) : ParamRange{});
    if (cfg_.zero) {
        zero_ = std::make_unique<ZeroAdamW>(*optimizer_, *comm_);
        say(Error::concat("zero=1: AdamW's moments are sharded over ", comm_->size(), " rank(s): ",
                          zero_->state_bytes(), " bytes of m and v on rank 0 (", zero_->state_bytes_unsharded(),
                          " unsharded)"));
    }
    state_.seed = cfg_.seed;
    if (resume_from_) {
        load_checkpoint_weights(resume_from_->path, *model_);
        state_ = load_checkpoint_state(resume_from_->path, *optimizer_);
        guard_.restore(state_.anomaly_guard);
        if (data_) data_->set_cursor(state_.cursor);
        else train_data_->set_cursor(state_.cursor);
        last_checkpoint_ = resume_from_->path;
    } else if (init.weights) {
        model_->load_weights(*init.weights);
        say("starting from the weights of " + init.source);
    } else {
        model_->init(cfg_.seed);
    }
    // Every rank starts from rank 0's weights, whatever each one loaded or drew. The optimizer's
    // state comes from the same checkpoint file on every rank, or is zero.
    if (comm_->size() > 1) broadcast_params();
    state_.train_config = cfg_.to_json();

    fs::create_directories(options.run_dir);
    metrics_path_ = (fs::path(options.run_dir) / "metrics.jsonl").string();
    plot_path_ = (fs::path(options.run_dir) / "loss.svg").string();
    if (is_rank0()) {
        nlohmann::json resolved = cfg_.to_json();
        resolved["model"] = model_json_;
        resolved["data"] = fs::absolute(options.data_dir).string();
        io::write_file_atomic((fs::path(options.run_dir) / "config.json").string(), resolved.dump(2) + "\n");
        metrics_ = std::make_unique<MetricsLog>(metrics_path_, state_.step);
    }
    if (resume_from_) {
        say("resumed from " + resume_from_->path);
        record_event("resumed", state_.step, "", "continue", {{"checkpoint", resume_from_->path}});
    }
    if (policy_ == AnomalyPolicy::Rollback) {
        auto initial = free_snapshot_buffer();
        initial->tokenizer_config_json = tokenizer_config_json_;
        take_snapshot(*initial, *model_, *optimizer_, state_, tokenizer_json_);
        last_good_ = initial;
    }

    if (is_rank0()) writer_ = std::make_unique<CheckpointWriter>(CheckpointWriterOptions{
        .parent = checkpoints_,
        .async = cfg_.async_checkpoints,
        .keep_last = cfg_.keep_checkpoints,
        .keep_every = cfg_.keep_every,
        .after_file =
            [this](const std::string& name, int64_t step) {  // on the writer's thread
                if (name != "model.safetensors") return;
                if (faults_.take(FaultKind::Kill, step, "checkpoint")) ::raise(SIGKILL);
                if (faults_.take(FaultKind::CheckpointFail, step))
                    throw Error(name, ": write failed: No space left on device (injected fault ckpt-fail@", step, ")");
            },
        .after_commit =
            [this](const std::string& dir, int64_t step) {
                const std::string file = (fs::path(dir) / "model.safetensors").string();
                if (faults_.take(FaultKind::CheckpointCorrupt, step)) corrupt_file(file);
                if (faults_.take(FaultKind::CheckpointTruncate, step)) truncate_file_to_half(file);
            }});
    // The first snapshot would fault in its fresh memory page by page while training waits
    // (seconds for a 124M-parameter model); touching one buffer on the writer's thread now
    // makes that snapshot a plain copy too.
    if (writer_ && cfg_.async_checkpoints) {
        const size_t n = static_cast<size_t>(model_->layout().n_params());
        writer_->run_in_background([buffer = free_snapshot_buffer(), n] {
            buffer->params.resize(n);
            buffer->exp_avg.resize(n);
            buffer->exp_avg_sq.resize(n);
        });
    }
    watchdog_ = std::make_unique<Watchdog>(cfg_.watchdog_factor, cfg_.watchdog_min_seconds, [this](const std::string& d) {
        if (events_.on_hang) events_.on_hang(d);  // expected not to return
        log_warn(d, "; exiting with code 3");
        std::_Exit(3);
    });
    step_ = std::make_unique<TrainStep>(*model_, *optimizer_, guard_, *comm_, cfg_.grad_accum, zero_.get());
    exchange_ = std::make_unique<GradientExchange>(cfg_, *model_, *comm_);
    if (exchange_->is_active()) {
        step_->set_exchange(exchange_.get());
        say("gradient exchange: " + exchange_->describe());
    }
    if (resume_from_) {
        const std::string why = exchange_->load(resume_from_->path, *optimizer_);
        if (!why.empty()) warn(why);
    }
    windows_.resize(local_batch_ * (cfg_.seq_len + 1));
}

void TrainingRun::broadcast_params() {
    const Tensor params = model_->params();
    std::vector<std::byte> host(params.bytes());
    be_.copy_to_host(host.data(), params.data, host.size());
    comm_->broadcast(Tensor(host.data(), params.dtype, params.shape), 0);
    be_.copy_to_device(params.data, host.data(), host.size());
}

void TrainingRun::record_event(const std::string& event, int64_t step, const std::string& reason,
                               const std::string& action, nlohmann::json extra) {
    if (!metrics_) return;  // not rank 0
    nlohmann::json record = {{"event", event}, {"step", step}};
    if (!reason.empty()) record["reason"] = reason;
    record["action"] = action;
    for (auto it = extra.begin(); it != extra.end(); ++it) record[it.key()] = it.value();
    metrics_->append(record);
}

// Every rank evaluates its share of each fixed batch of batch_size rows (rank r: local batch
// i * ranks + r of the loader's, the rows r * B/N .. of global batch i) and the mean is reduced:
// the same batches, and the same value on every rank, as on one rank.
std::optional<double> TrainingRun::evaluate(int64_t step) {
    if (data_) return evaluate_run_data(step);
    if (!val_data_) return std::nullopt;
    const int64_t n_ranks = comm_->size();
    const int64_t n = std::min(cfg_.eval_batches, val_data_->n_fixed_batches() / n_ranks);
    if (n == 0) return std::nullopt;
    const int64_t B = local_batch_, T = cfg_.seq_len;
    double total = 0;
    for (int64_t i = 0; i < n; ++i) {
        watchdog_->beat("evaluation", step);
        val_data_->fixed_batch(i * n_ranks + comm_->rank(), windows_);
        split_windows(windows_, B, T, eval_batch_);
        total += model_->forward(eval_batch_.tokens, eval_batch_.targets, B, T);
        if (i == 0 && faults_.take(FaultKind::Kill, step, "eval")) ::raise(SIGKILL);
    }
    comm_->all_reduce(Tensor(&total, DType::F64, {1}));
    return total / double(n * n_ranks);
}

// The run data's batches weigh their targets (fine-tuning: the assistant's tokens only), so the
// value is sum(w * loss) / sum(w) over every evaluation batch of every rank, not a mean of means.
std::optional<double> TrainingRun::evaluate_run_data(int64_t step) {
    if (cfg_.eval_every <= 0) return std::nullopt;
    const int64_t n = std::min(cfg_.eval_batches, data_->n_eval_batches());
    if (n == 0) return std::nullopt;
    std::array<double, 2> sums = {0, 0};  // weighted loss, weight
    for (int64_t i = 0; i < n; ++i) {
        watchdog_->beat("evaluation", step);
        data_->eval_batch(i, eval_batch_);
        model_->forward(eval_batch_.tokens, eval_batch_.targets, eval_batch_.B, eval_batch_.T, model::kIgnoreIndex,
                        eval_batch_.loss_weights);
        sums[0] += model_->loss_sum();
        sums[1] += model_->weight_sum();
    }
    comm_->all_reduce(Tensor(sums.data(), DType::F64, {2}));
    if (sums[1] <= 0) return std::nullopt;
    return sums[0] / sums[1];
}

void TrainingRun::inject_before_forward(int64_t step) {
    // A NaN in a parameter goes in before the forward pass; in the loss or gradients, after.
    const Fault* f = faults_.take(FaultKind::Nan, step,
                                  [](const Fault& f) { return f.target != "grads" && f.target != "loss"; });
    if (!f) return;
    const Tensor weights = model_->layout().view(model_->params(), f->target);
    const float nan = std::numeric_limits<float>::quiet_NaN();
    be_.copy_to_device(weights.data, &nan, sizeof nan);
    record_event("fault", step, "injected " + f->spec + ": NaN in " + f->target, "injected");
}

void TrainingRun::inject_after_backward(int64_t step, double& loss) {
    if (const Fault* f = faults_.take(FaultKind::Nan, step,
                                      [](const Fault& f) { return f.target == "grads" || f.target == "loss"; })) {
        if (f->target == "loss") {
            loss = std::numeric_limits<double>::quiet_NaN();
        } else {
            const float nan = std::numeric_limits<float>::quiet_NaN();
            be_.copy_to_device(step_->gradients().data, &nan, sizeof nan);
        }
        record_event("fault", step, "injected " + f->spec + ": NaN in " + f->target, "injected");
    }
    if (const Fault* f = faults_.take(FaultKind::Spike, step)) {
        loss *= f->value;
        be_.scale(step_->gradients(), float(f->value));
        record_event("fault", step, Error::concat("injected ", f->spec, ": loss and gradients x ", f->value), "injected");
    }
    if (const Fault* f = faults_.take(FaultKind::Hang, step)) {
        record_event("fault", step, Error::concat("injected ", f->spec, ": sleeping ", f->value, " s"), "injected");
        std::this_thread::sleep_for(std::chrono::duration<double>(f->value));
    }
    if (faults_.take(FaultKind::Kill, step, "step")) ::raise(SIGKILL);
}

bool TrainingRun::checkpoint() {
    const auto begin = std::chrono::steady_clock::now();
    watchdog_->beat("checkpoint snapshot", state_.step);
    if (!std::isfinite(be_.sum_squares(model_->params()))) {
        warn("step " + std::to_string(state_.step) + ": the weights are not finite; no checkpoint is written");
        record_event("checkpoint_skipped", state_.step, "the weights are not finite", "keep the older checkpoints");
        return false;
    }
    state_.anomaly_guard = guard_.to_json();
    if (!writer_) {  // not rank 0: nothing to write, but a rollback needs this state here too
        if (zero_) zero_->gather_moments(nullptr, nullptr);  // rank 0 writes every rank's range
        std::shared_ptr<CheckpointSnapshot> snapshot;
        if (policy_ == AnomalyPolicy::Rollback) {
            snapshot = free_snapshot_buffer();
            snapshot->tokenizer_config_json = tokenizer_config_json_;
            take_snapshot(*snapshot, *model_, *optimizer_, state_, tokenizer_json_);
        }
        exchange_->save(snapshot.get(), *optimizer_);  // rank 0 writes every rank's part
        if (snapshot) last_good_ = snapshot;
        return true;
    }
    collect_checkpoints(true);  // at most one write in flight, and its buffer comes back
    watchdog_->beat("checkpoint snapshot", state_.step);
    auto snapshot = free_snapshot_buffer();
    snapshot->tokenizer_config_json = tokenizer_config_json_;
    take_snapshot(*snapshot, *model_, *optimizer_, state_, tokenizer_json_);
    if (zero_) zero_->gather_moments(&snapshot->exp_avg, &snapshot->exp_avg_sq);
    exchange_->save(snapshot.get(), *optimizer_);
    if (policy_ == AnomalyPolicy::Rollback) last_good_ = snapshot;
    writer_->submit(std::move(snapshot));
    stall_by_step_[state_.step] = seconds_since(begin);
    return true;
}

std::shared_ptr<CheckpointSnapshot> TrainingRun::free_snapshot_buffer() {
    for (const auto& buffer : snapshot_buffers_)
        if (buffer.use_count() == 1) return buffer;
    return snapshot_buffers_.emplace_back(std::make_shared<CheckpointSnapshot>());
}

void TrainingRun::collect_checkpoints(bool wait) {
    if (!writer_) return;  // not rank 0
    if (wait) watchdog_->beat("waiting for the checkpoint write", state_.step);
    for (const CheckpointOutcome& o : writer_->collect(wait)) {
        const double stall = stall_by_step_[o.step];
        stall_by_step_.erase(o.step);
        if (!o.path.empty()) {
            last_checkpoint_ = o.path;
            say("checkpoint " + o.path);
            record_event("checkpoint", o.step, "", "saved",
                         {{"path", o.path}, {"stall_s", stall}, {"write_s", o.write_seconds},
                          {"write_cpu_s", o.write_cpu_seconds}});
            if (!o.error.empty()) warn(o.path + ": " + o.error);
        } else {
            warn("checkpoint of step " + std::to_string(o.step) + " failed: " + o.error +
                 "; training goes on and the newest checkpoint on disk stays " +
                 (last_checkpoint_.empty() ? std::string("(none)") : last_checkpoint_));
            record_event("checkpoint_failed", o.step, o.error, "continue");
        }
    }
}

int64_t TrainingRun::handle_anomaly(int64_t step, const StepResult& result, double lr, bool& is_applied) {
    const std::string& reason = *result.anomaly;
    is_applied = false;
    // A finite spike right after another anomaly, on another batch: the weights, not a batch,
    // cause it, and refusing the update again would freeze the run on those weights until it
    // stops. Take the update, clipped as every update is (a run that spikes once at a high
    // learning rate recovers by itself); NaN and infinity are never applied.
    const bool is_finite = std::isfinite(result.loss) && std::isfinite(result.grad_norm);
    if (is_finite && guard_.consecutive() >= 1 && policy_ != AnomalyPolicy::Stop) {
        step_->apply(result, lr);
        guard_.absorb(result.loss, result.grad_norm);
        is_applied = true;
        warn("step " + std::to_string(step) + ": " + reason + "; the spike outlived its batch (" +
             std::to_string(guard_.consecutive()) + " anomalies in a row), so the clipped update is taken");
        record_event("anomaly", step, reason, "clipped_update", {{"in_a_row", guard_.consecutive()}});
        return step;
    }
    guard_.reject();
    if (guard_.too_many_in_a_row())
        stop_with_last_good_state(step, std::to_string(guard_.refused()) + " anomalies in a row (the last: " +
                                            reason + "); anomaly_max_consecutive is " +
                                            std::to_string(cfg_.anomaly_max_consecutive));
    switch (policy_) {
        case AnomalyPolicy::Skip:
            warn("step " + std::to_string(step) + ": " + reason + "; update skipped");
            record_event("anomaly", step, reason, "skip");
            return step;
        case AnomalyPolicy::Rollback: {
            const CheckpointSnapshot& good = *last_good_;
            restore_snapshot(good, *model_, *optimizer_);
            exchange_->restore(good);
            guard_.restore_window(good.state.anomaly_guard);
            const int64_t skipped = step - good.state.step;
            warn("step " + std::to_string(step) + ": " + reason + "; rolled back to step " +
                 std::to_string(good.state.step) + ", skipping the " + std::to_string(skipped) +
                 " batch(es) read since");
            record_event("anomaly", step, reason, "rollback",
                         {{"to_step", good.state.step}, {"skipped_batches", skipped}});
            // The data cursor stays where it is: the window that led to the spike is not seen again.
            state_.step = good.state.step;
            state_.val_loss = good.state.val_loss;
            return good.state.step;
        }
        case AnomalyPolicy::Stop:
            stop_with_last_good_state(step, reason + " (anomaly_policy is stop)");
    }
    return step;
}

void TrainingRun::stop_with_last_good_state(int64_t step, const std::string& why) {
    collect_checkpoints(true);
    std::string saved;
    // The update of `step` was not applied: the weights are those after step - 1, and the data
    // cursor is past the batch that failed, so a resumed run goes on with the next one.
    state_.step = step - 1;
    state_.cursor = data_cursor();
    if (checkpoint()) {
        collect_checkpoints(true);
        saved = last_checkpoint_;
    }
    record_event("anomaly", step, why, "stop", {{"checkpoint", saved}});
    // A rank that fails ends the whole job under mpirun: the others wait until rank 0 has saved.
    comm_->barrier();
    if (!is_rank0()) throw Error("training stopped at step ", step, ": ", why, " (rank 0 saves the last good state)");
    if (saved.empty())
        throw Error("training stopped at step ", step, ": ", why, ". The weights are not finite, so nothing was saved; ",
                    "the newest valid checkpoint is ", last_checkpoint_.empty() ? "(none)" : last_checkpoint_);
    throw Error("training stopped at step ", step, ": ", why, ". The last good state is saved as ", saved,
                " (tandem train --resume continues after the batch that failed)");
}

TrainResult TrainingRun::run() {
    const LrSchedule schedule{cfg_.lr, cfg_.lr_min, cfg_.warmup_steps, cfg_.steps};
    std::optional<WindowBatchSource> windows;
    if (!data_) windows.emplace(*train_data_, local_batch_, cfg_.seq_len);
    BatchSource& source = data_ ? data_->batches() : *windows;
    TrainResult result;
    result.n_params = model_->layout().n_params();
    const int64_t last_step = options_.stop_after > 0 ? std::min(options_.stop_after, cfg_.steps) : cfg_.steps;
    double recent_step_seconds = 0;  // exponential average, for the ETA
    uint64_t bytes_sent_before = comm_->bytes_sent();  // per step: this rank's, the step's collectives

    for (int64_t step = state_.step + 1; step <= last_step; ++step) {
        const auto begin = std::chrono::steady_clock::now();
        watchdog_->beat("forward and backward", step);
        inject_before_forward(step);
        const double lr = schedule.lr_at(step);
        const StepResult result = step_->run(source, lr, {.after_backward = [&](double& loss) {
                                                 inject_after_backward(step, loss);
                                                 watchdog_->beat("optimizer", step);
                                             }});
        const double loss = result.loss, grad_norm = result.grad_norm;
        bool is_skipped = false;
        if (result.anomaly) {
            bool is_applied = false;
            const int64_t continue_after = handle_anomaly(step, result, lr, is_applied);
            if (continue_after != step) {  // rolled back
                step = continue_after;
                continue;
            }
            is_skipped = !is_applied;
        }
        // Local steps: the outer step on its schedule, and before anything that must see the
        // shared parameters (evaluation, a checkpoint, the end).
        const bool is_last = step == last_step;
        exchange_->after_step(step, is_last || step % cfg_.checkpoint_every == 0 ||
                                        (cfg_.eval_every > 0 && step % cfg_.eval_every == 0));
        be_.synchronize();
        const double seconds = seconds_since(begin);
        const uint64_t bytes_sent = comm_->bytes_sent() - bytes_sent_before;
        bytes_sent_before += bytes_sent;
        watchdog_->step_took(seconds);
        recent_step_seconds = recent_step_seconds == 0 ? seconds : 0.9 * recent_step_seconds + 0.1 * seconds;

        state_.step = step;
        state_.cursor = data_cursor();
        state_.tokens_seen += result.n_tokens;

        StepReport report{step, cfg_.steps, loss, lr, grad_norm, double(result.n_tokens) / seconds,
                          recent_step_seconds * double(last_step - step), std::nullopt};
        report.bytes_sent = bytes_sent;
        nlohmann::json record = {{"step", step}, {"loss", loss}, {"lr", lr}, {"grad_norm", grad_norm},
                                 {"tokens_per_s", report.tokens_per_s}, {"bytes_sent", bytes_sent}};
        if (!std::isfinite(loss)) record["loss"] = nullptr;  // JSON has no NaN
        if (!std::isfinite(grad_norm)) record["grad_norm"] = nullptr;
        if (is_skipped) record["skipped"] = true;
        if ((cfg_.eval_every > 0 && step % cfg_.eval_every == 0) || is_last) {
            report.val_loss = evaluate(step);
            if (report.val_loss) {
                state_.val_loss = report.val_loss;
                record["val_loss"] = *report.val_loss;
            }
        }
        if (is_rank0()) {
            metrics_->append(record);
            if (report.val_loss || is_last) io::write_file_atomic(plot_path_, render_loss_svg(read_metrics(metrics_path_)));
            if (events_.on_step) events_.on_step(report);
        }

        if (step % cfg_.checkpoint_every == 0 || is_last) checkpoint();
        collect_checkpoints(false);
    }
    collect_checkpoints(true);
    // The run's end must be on disk: a failed final write (a full disk that has since been
    // cleared, an injected fault) gets one more try.
    const std::string final_dir = (fs::path(checkpoints_) / ("step-" + std::to_string(state_.step))).string();
    bool is_retry = is_rank0() && state_.step > 0 && last_checkpoint_ != final_dir;
    // checkpoint() gathers ZeRO's moments and the exchange's state from every rank: all retry.
    if (zero_ || exchange_->is_active()) {
        double flag = is_retry;
        comm_->broadcast(Tensor(&flag, DType::F64, {1}), 0);
        is_retry = flag != 0;
    }
    if (is_retry) {
        say("writing the final checkpoint again");
        checkpoint();
        collect_checkpoints(true);
        if (is_rank0() && last_checkpoint_ != final_dir)
            throw Error("the final checkpoint (step ", state_.step, ") could not be written; the newest on disk is ",
                        last_checkpoint_.empty() ? "(none)" : last_checkpoint_);
    }
    result.final_step = state_.step;
    result.last_checkpoint = last_checkpoint_;
    result.val_loss = state_.val_loss;
    result.rank = comm_->rank();
    return result;
}

}  // namespace

TrainResult run_training(const TrainOptions& options, const TrainEvents& events) {
    options.config.validate();
    TrainingRun run(options, events);
    return run.run();
}

}  // namespace tandem::train

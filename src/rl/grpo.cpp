// The GRPO loop: rollouts on the current weights, rewards, advantages, mu updates through
// train::TrainStep with the surrogate's per-token weights, metrics, samples and checkpoints.
#include "rl/grpo.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <limits>
#include <memory>

#include "backend/registry.h"
#include "core/checksum.h"
#include "core/error.h"
#include "dist/communicator.h"
#include "io/atomic_file.h"
#include "io/checkpoint_dir.h"
#include "io/tokenizer_files.h"
#include "model/model.h"
#include "rl/grpo_loss.h"
#include "rl/rollout.h"
#include "train/adamw.h"
#include "train/anomaly_guard.h"
#include "train/checkpoint.h"
#include "train/checkpoint_writer.h"
#include "train/loss_plot.h"
#include "train/lr_schedule.h"
#include "train/metrics_log.h"
#include "train/train_step.h"

namespace tandem::rl {

namespace fs = std::filesystem;

namespace {

// Every field once, for both directions of the JSON form.
template <typename Config, typename Visit>
void visit_fields(Config& c, Visit&& f) {
    f("task", c.task), f("steps", c.steps), f("prompts_per_step", c.prompts_per_step);
    f("group_size", c.group_size), f("updates_per_batch", c.updates_per_batch);
    f("micro_batch", c.micro_batch), f("max_tokens", c.max_tokens), f("temperature", c.temperature);
    f("lr", c.lr), f("warmup_steps", c.warmup_steps), f("weight_decay", c.weight_decay);
    f("beta1", c.beta1), f("beta2", c.beta2), f("grad_clip", c.grad_clip);
    f("advantage", c.advantage), f("epsilon_low", c.epsilon_low), f("epsilon_high", c.epsilon_high);
    f("beta", c.beta), f("format_weight", c.format_weight), f("seed", c.seed);
    f("checkpoint_every", c.checkpoint_every), f("keep_last", c.keep_last);
    f("sample_every", c.sample_every), f("device", c.device);
}

}  // namespace

nlohmann::json GrpoConfig::to_json() const {
    nlohmann::json json = nlohmann::json::object();
    visit_fields(*this, [&](const char* key, const auto& value) { json[key] = value; });
    return json;
}

GrpoConfig GrpoConfig::from_json(const nlohmann::json& json) {
    GrpoConfig c;
    const nlohmann::json known = c.to_json();
    for (auto it = json.begin(); it != json.end(); ++it)
        if (!known.contains(it.key())) throw Error("grpo config: unknown key '", it.key(), "'");
    visit_fields(c, [&](const char* key, auto& value) {
        if (json.contains(key)) value = json.at(key).get<std::decay_t<decltype(value)>>();
    });
    return c;
}

void GrpoConfig::validate() const {
    const auto at_least = [](const char* name, double value, double lo) {
        if (!(value >= lo)) throw Error("grpo: ", name, " is ", value, " but must be at least ", lo);
    };
    at_least("steps", double(steps), 1);
    at_least("prompts_per_step", double(prompts_per_step), 1);
    at_least("group_size", double(group_size), 2);  // a group of one has no relative advantage
    at_least("updates_per_batch", double(updates_per_batch), 1);
    at_least("micro_batch", double(micro_batch), 1);
    at_least("max_tokens", double(max_tokens), 1);
    at_least("temperature", temperature, 0);
    at_least("lr", lr, 0);
    at_least("warmup_steps", double(warmup_steps), 0);
    at_least("epsilon_low", epsilon_low, 0);
    at_least("epsilon_high", epsilon_high, 0);
    at_least("beta", beta, 0);
    at_least("checkpoint_every", double(checkpoint_every), 1);
    at_least("keep_last", double(keep_last), 1);
    at_least("sample_every", double(sample_every), 0);
    if (epsilon_low >= 1) throw Error("grpo: epsilon_low ", epsilon_low, " must be below 1 (the ratio's floor is 1 - it)");
    if (temperature == 0)
        throw Error("grpo: temperature 0 samples the same completion G times, so every group's rewards are ",
                    "equal and nothing is learned; use a temperature above 0 (1 is usual)");
    advantage_mode_from_string(advantage);
    make_task(task);
}

namespace {

double seconds_since(std::chrono::steady_clock::time_point t) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

// The micro-batches of one batch of rollouts, built once and handed to the step in order on
// every update.
class RolloutBatches final : public train::BatchSource {
public:
    std::vector<train::Batch> batches;
    void next(train::Batch& batch) override { batch = batches[next_++ % batches.size()]; }
    void rewind() { next_ = 0; }

private:
    size_t next_ = 0;
};

// sum over the rows that have a target of the policy's entropy, -sum p log p, from logits [N, V].
double entropy_sum(std::span<const float> logits, std::span<const int32_t> targets, int64_t V) {
    double total = 0;
    for (size_t i = 0; i < targets.size(); ++i) {
        if (targets[i] == model::kIgnoreIndex) continue;
        const std::span<const float> row = logits.subspan(i * V, V);
        const double top = *std::max_element(row.begin(), row.end());
        double sum = 0, weighted = 0;
        for (float x : row) {
            const double e = std::exp(double(x) - top);
            sum += e, weighted += e * (double(x) - top);
        }
        total += std::log(sum) - weighted / sum;
    }
    return total;
}

// What the updates of one batch add up to, for the metrics.
struct UpdateTotals {
    double kl = 0, entropy = 0, loss = 0, grad_norm = 0;
    int64_t n_clipped = 0, n_scored = 0;
    std::optional<std::string> anomaly;
};

// What the loss needs beside a micro-batch: per position [B, T] and per row [B].
struct MicroTerms {
    std::vector<double> logp_old, logp_ref, advantages;
};

class GrpoRun {
public:
    GrpoRun(const GrpoOptions& options, const GrpoEvents& events);
    GrpoResult run();

private:
    void say(const std::string& text) const {
        if (events_.on_message) events_.on_message(text);
    }
    void start_or_resume();
    // Rollouts -> micro-batches with targets on the completion tokens (loss weight 1 each).
    void build_batches(const std::vector<Rollout>& rollouts, const std::vector<double>& advantages);
    // updates_per_batch optimizer steps on the batches built; scale: see run().
    UpdateTotals update(int64_t step, double lr, double scale);
    void checkpoint();
    void collect_checkpoints(bool wait);
    void write_samples(int64_t step, const std::vector<Problem>& problems, const std::vector<Rollout>& rollouts);

    const GrpoOptions& options_;
    const GrpoConfig& cfg_;
    const GrpoEvents& events_;
    const std::string checkpoints_;
    std::unique_ptr<Task> task_;
    GrpoLossConfig loss_;
    backend::Backend& be_;
    io::BpeTokenizer tokenizer_;
    std::string tokenizer_json_;
    int64_t context_;
    std::unique_ptr<model::Model> model_;
    std::unique_ptr<train::AdamW> optimizer_;
    train::AnomalyGuard guard_;
    dist::LocalCommunicator comm_;
    std::unique_ptr<train::TrainStep> step_;
    std::unique_ptr<RolloutEngine> rollout_;                 // over model_'s weights, in place
    std::unique_ptr<infer::PagedForward> reference_;         // beta > 0 only
    train::TrainingState state_;
    std::unique_ptr<train::MetricsLog> metrics_, samples_;  // both cut back to the step resumed
    std::unique_ptr<train::CheckpointWriter> writer_;
    std::shared_ptr<train::CheckpointSnapshot> snapshot_ = std::make_shared<train::CheckpointSnapshot>();
    std::string last_checkpoint_;

    RolloutBatches batches_;
    std::vector<MicroTerms> terms_;
    std::vector<double> logp_;        // of one micro-batch
    std::vector<float> logits_host_;  // of one micro-batch, for the entropy
    int64_t n_completion_tokens_ = 0;
};

GrpoRun::GrpoRun(const GrpoOptions& options, const GrpoEvents& events)
    : options_(options),
      cfg_(options.config),
      events_(events),
      checkpoints_((fs::path(options.run_dir) / "checkpoints").string()),
      task_(make_task(cfg_.task)),
      loss_{.mode = advantage_mode_from_string(cfg_.advantage), .epsilon_low = cfg_.epsilon_low,
            .epsilon_high = cfg_.epsilon_high, .beta = cfg_.beta, .max_completion_tokens = cfg_.max_tokens},
      be_(backend::get_backend(cfg_.device)),
      tokenizer_(*options.tokenizer),
      tokenizer_json_(io::to_hf_tokenizer_json(*options.tokenizer)),
      context_(options.initial->config().max_seq_len),
      // GRPO's loss hovers around 0 and changes sign, and steps without signal have a zero
      // gradient: spike tests against a window would misfire, so the guard here catches values
      // that are not finite and nothing else.
      guard_({.loss_factor = std::numeric_limits<double>::infinity(),
              .norm_factor = std::numeric_limits<double>::infinity()}) {
    fs::create_directories(checkpoints_);
    const int64_t rows = cfg_.prompts_per_step * cfg_.group_size;
    model_ = std::make_unique<model::Model>(options.initial->config(), be_, DType::F32,
                                            std::min(cfg_.micro_batch, rows), context_);
    optimizer_ = std::make_unique<train::AdamW>(
        be_, model_->layout(), DType::F32,
        train::AdamWConfig{.beta1 = float(cfg_.beta1), .beta2 = float(cfg_.beta2),
                           .weight_decay = float(cfg_.weight_decay), .grad_clip = float(cfg_.grad_clip)});
    start_or_resume();
    const int64_t n_micro = (rows + model_->max_batch() - 1) / model_->max_batch();
    step_ = std::make_unique<train::TrainStep>(*model_, *optimizer_, guard_, comm_, n_micro);
    rollout_ = std::make_unique<RolloutEngine>(model_->weights(), tokenizer_, std::min<int64_t>(rows, 256), context_);
    if (cfg_.beta > 0)  // the starting weights, frozen: no gradients, no optimizer state
        reference_ = std::make_unique<infer::PagedForward>(
            *options.initial, infer::PagedForwardOptions{.max_tokens_per_step = context_,
                                                         .pages = {.n_pages = (context_ + 15) / 16, .page_size = 16}});
    train::CheckpointWriterOptions writer;
    writer.parent = checkpoints_;
    writer.keep_last = cfg_.keep_last;
    writer_ = std::make_unique<train::CheckpointWriter>(std::move(writer));
}

void GrpoRun::start_or_resume() {
    for (const std::string& line : io::recover_checkpoint_dirs(checkpoints_)) say(line);
    const std::string config_path = (fs::path(options_.run_dir) / "config.json").string();
    std::optional<io::CheckpointInfo> from;
    if (options_.resume != train::ResumeMode::Never) from = io::newest_valid_checkpoint(checkpoints_);
    if (options_.resume == train::ResumeMode::Never && !io::list_checkpoints(checkpoints_).empty())
        throw Error(options_.run_dir, ": already holds checkpoints; pass --resume to continue it, or choose another --out");
    if (options_.resume == train::ResumeMode::Required && !from)
        throw Error(options_.run_dir, ": --resume found no valid checkpoint in ", checkpoints_);

    state_.seed = cfg_.seed;
    state_.train_config = cfg_.to_json();
    if (!from) {
        model_->load_weights(*options_.initial);
        io::write_file_atomic(config_path, cfg_.to_json().dump(2) + "\n");
    } else {
        // The run must go on as it began: every setting but the number of steps is the saved one.
        const nlohmann::json saved = train::read_checkpoint_state(from->path).train_config;
        const nlohmann::json given = cfg_.to_json();
        for (auto it = given.begin(); it != given.end(); ++it)
            if (it.key() != "steps" && saved.value(it.key(), nlohmann::json()) != it.value())
                throw Error(options_.run_dir, ": resuming with ", it.key(), " = ", it.value().dump(), " but the run ",
                            "was started with ", saved.value(it.key(), nlohmann::json()).dump(),
                            " (resume with the same settings; only --steps may change)");
        train::load_checkpoint_weights(from->path, *model_);
        state_ = train::load_checkpoint_state(from->path, *optimizer_);
        state_.train_config = given;
        guard_.restore(state_.anomaly_guard);
        last_checkpoint_ = from->path;
        say("resumed from " + from->path + " (step " + std::to_string(state_.step) + ")");
    }
    metrics_ = std::make_unique<train::MetricsLog>((fs::path(options_.run_dir) / "metrics.jsonl").string(), state_.step);
    samples_ = std::make_unique<train::MetricsLog>((fs::path(options_.run_dir) / "samples.jsonl").string(), state_.step);
}

void GrpoRun::build_batches(const std::vector<Rollout>& rollouts, const std::vector<double>& advantages) {
    const std::vector<double> ref = reference_ ? completion_logprobs(*reference_, rollouts) : std::vector<double>();
    const int64_t rows = int64_t(rollouts.size()), per = model_->max_batch();
    const int64_t n_micro = (rows + per - 1) / per;
    batches_.batches.resize(n_micro);
    terms_.assign(n_micro, {});
    batches_.rewind();
    n_completion_tokens_ = 0;
    size_t ref_at = 0;
    for (int64_t m = 0; m < n_micro; ++m) {
        const int64_t first = m * per, B = std::min(per, rows - first);
        int64_t T = 1;
        for (int64_t r = first; r < first + B; ++r)
            T = std::max<int64_t>(T, int64_t(rollouts[r].prompt.size() + rollouts[r].completion.size()) - 1);
        train::Batch& batch = batches_.batches[m];
        batch.resize(B, T, true);
        MicroTerms& terms = terms_[m];
        terms.logp_ref.assign(reference_ ? B * T : 0, 0.0);
        terms.advantages.assign(advantages.begin() + first, advantages.begin() + first + B);
        for (int64_t b = 0; b < B; ++b) {
            const Rollout& r = rollouts[first + b];
            const int64_t n_prompt = int64_t(r.prompt.size()), n = n_prompt + int64_t(r.completion.size());
            for (int64_t t = 0; t < T; ++t) {
                const size_t i = size_t(b * T + t);
                // Inputs past the sequence are padding (id 0) that nothing attends back to.
                batch.tokens[i] = t < n_prompt ? r.prompt[t] : t < n ? r.completion[t - n_prompt] : 0;
                const bool is_completion = t >= n_prompt - 1 && t + 1 < n;
                batch.targets[i] = is_completion ? r.completion[t + 1 - n_prompt] : model::kIgnoreIndex;
                batch.loss_weights[i] = is_completion ? 1.0f : 0.0f;
                if (is_completion && reference_) terms.logp_ref[i] = ref[ref_at++];
            }
            n_completion_tokens_ += int64_t(r.completion.size());
        }
    }
}

void GrpoRun::write_samples(int64_t step, const std::vector<Problem>& problems, const std::vector<Rollout>& rollouts) {
    // Every completion of the first prompt: the group the advantages compare.
    for (int64_t g = 0; g < cfg_.group_size; ++g) {
        const Rollout& r = rollouts[g];
        const nlohmann::json line = {{"step", step}, {"prompt", task_->prompt(problems[0])}, {"completion", r.text},
                                     {"reward", r.reward.total}, {"correct", r.reward.correct > 0},
                                     {"finish", infer::finish_reason_name(r.finish)}};
        // A sampled completion may end inside a UTF-8 character: U+FFFD stands in for it.
        samples_->append(nlohmann::json::parse(line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)));
    }
}

void GrpoRun::checkpoint() {
    collect_checkpoints(true);  // the snapshot buffer is free again
    state_.anomaly_guard = guard_.to_json();
    train::take_snapshot(*snapshot_, *model_, *optimizer_, state_, tokenizer_json_);
    writer_->submit(snapshot_);
}

void GrpoRun::collect_checkpoints(bool wait) {
    for (const train::CheckpointOutcome& o : writer_->collect(wait)) {
        if (o.path.empty()) {
            say("checkpoint of step " + std::to_string(o.step) + " failed: " + o.error);
            metrics_->append({{"event", "checkpoint_failed"}, {"step", o.step}, {"reason", o.error}});
            continue;
        }
        last_checkpoint_ = o.path;
        metrics_->append({{"event", "checkpoint"}, {"step", o.step}, {"path", o.path}});
    }
}

UpdateTotals GrpoRun::update(int64_t step, double lr, double scale) {
    UpdateTotals out;
    const int64_t V = model_->config().vocab_size;
    for (int64_t u = 0; u < cfg_.updates_per_batch; ++u) {
        train::StepHooks hooks;
        hooks.before_backward = [&](int64_t micro, const train::Batch& batch) {
            const size_t N = size_t(batch.B * batch.T);
            logp_.resize(N);
            model_->token_losses(logp_);
            for (double& x : logp_) x = -x;
            MicroTerms& t = terms_[micro];
            if (u == 0) {
                // The weights have not moved since the rollouts: these are the old policy's.
                t.logp_old = logp_;
                const Tensor logits = model_->logits();
                logits_host_.resize(N * V);
                be_.copy_to_host(logits_host_.data(), logits.data, logits.bytes());
                out.entropy += entropy_sum(logits_host_, batch.targets, V);
            }
            const GrpoTerms g = grpo_terms({.B = batch.B, .T = batch.T, .targets = batch.targets, .logp = logp_,
                                            .logp_old = t.logp_old, .logp_ref = t.logp_ref,
                                            .advantages = t.advantages},
                                           loss_, scale);
            model_->set_loss_weights(g.weights);
            out.kl += g.kl_sum, out.n_clipped += g.n_clipped, out.n_scored += g.n_tokens;
            return g.loss_sum;
        };
        const train::StepResult result = step_->run(batches_, lr, hooks);
        out.loss += result.loss / double(cfg_.updates_per_batch);
        out.grad_norm = std::max(out.grad_norm, result.grad_norm);
        if (result.anomaly) {
            out.anomaly = result.anomaly;
            guard_.reject();
            metrics_->append({{"event", "anomaly"}, {"step", step}, {"reason", *out.anomaly}, {"action", "skip"}});
            say("step " + std::to_string(step) + ": " + *out.anomaly + "; update skipped");
            if (guard_.too_many_in_a_row())
                throw Error("grpo stopped at step ", step, ": ", guard_.refused(), " updates in a row refused (the last: ",
                            *out.anomaly, "); the newest checkpoint is ",
                            last_checkpoint_.empty() ? "(none)" : last_checkpoint_);
            break;
        }
    }
    return out;
}

GrpoResult GrpoRun::run() {
    const train::LrSchedule schedule{cfg_.lr, cfg_.lr, cfg_.warmup_steps, cfg_.steps};
    const std::string metrics_path = metrics_->path();
    const std::string plot_path = (fs::path(options_.run_dir) / "reward.svg").string();
    const int64_t P = cfg_.prompts_per_step, G = cfg_.group_size;
    for (int64_t step = state_.step + 1; step <= cfg_.steps; ++step) {
        const auto begin = std::chrono::steady_clock::now();
        std::vector<Problem> problems;
        for (int64_t i = 0; i < P; ++i) problems.push_back(task_->problem(Split::Train, cfg_.seed, uint64_t((step - 1) * P + i)));
        RolloutOptions ro;
        ro.group_size = G;
        ro.max_tokens = cfg_.max_tokens;
        ro.format_weight = cfg_.format_weight;
        ro.sampling.temperature = float(cfg_.temperature);
        const uint64_t key[2] = {cfg_.seed, uint64_t(step)};
        ro.sampling.seed = xxh3_64(key, sizeof key);  // problem i draws with seed + i
        const std::vector<Rollout> rollouts = sample_rollouts(*rollout_->engine, tokenizer_, *task_, problems, ro);
        const double rollout_seconds = seconds_since(begin);

        std::vector<double> rewards;
        double reward = 0, correct = 0, formatted = 0, length = 0;
        for (const Rollout& r : rollouts) {
            rewards.push_back(r.reward.total);
            reward += r.reward.total, correct += r.reward.correct, formatted += r.reward.format;
            length += double(r.completion.size());
        }
        const double n = double(rollouts.size());
        build_batches(rollouts, group_advantages(rewards, G, loss_.mode));
        // Token-level mean: TrainStep divides by the step's loss weight (the completion tokens);
        // the weights carry the rest of 1 / Z (Dr. GRPO's Z is sequences x max_tokens).
        const double scale = double(n_completion_tokens_) / grpo_normalizer(n_completion_tokens_, int64_t(n), loss_);

        const auto update_begin = std::chrono::steady_clock::now();
        const UpdateTotals u = update(step, schedule.lr_at(step), scale);
        const double loss = u.loss, grad_norm = u.grad_norm;
        const std::optional<std::string>& anomaly = u.anomaly;
        be_.synchronize();
        const double tokens = std::max<double>(double(n_completion_tokens_), 1);
        GrpoStepReport report{.step = step, .total_steps = cfg_.steps, .reward = reward / n, .accuracy = correct / n,
                              .completion_tokens = length / n, .kl = u.n_scored ? u.kl / double(u.n_scored) : 0,
                              .clip_fraction = u.n_scored ? double(u.n_clipped) / double(u.n_scored) : 0,
                              .entropy = u.entropy / tokens, .loss = loss, .grad_norm = grad_norm,
                              .seconds = seconds_since(begin), .anomaly = anomaly};
        state_.step = step;
        state_.tokens_seen += n_completion_tokens_;
        nlohmann::json record = {{"step", step}, {"reward", report.reward}, {"accuracy", report.accuracy},
                                 {"format", formatted / n}, {"completion_tokens", report.completion_tokens},
                                 {"kl", report.kl}, {"clip_fraction", report.clip_fraction},
                                 {"entropy", report.entropy}, {"loss", loss}, {"grad_norm", grad_norm},
                                 {"lr", schedule.lr_at(step)}, {"rollout_s", rollout_seconds},
                                 {"update_s", seconds_since(update_begin)},
                                 {"completions_per_s", n / std::max(rollout_seconds, 1e-9)}};
        for (const char* key : {"loss", "grad_norm"})
            if (!std::isfinite(record[key].get<double>())) record[key] = nullptr;  // JSON has no NaN
        if (anomaly) record["skipped"] = true;
        metrics_->append(record);
        io::write_file_atomic(plot_path, train::render_metrics_svg(train::read_metrics(metrics_path), "tandem grpo: reward",
                                                                  {{"reward", "mean reward", "#1f77b4"},
                                                                   {"accuracy", "accuracy", "#d62728"}}));
        if (cfg_.sample_every > 0 && (step % cfg_.sample_every == 0 || step == 1)) write_samples(step, problems, rollouts);
        if (events_.on_step) events_.on_step(report);
        if (step % cfg_.checkpoint_every == 0 || step == cfg_.steps) checkpoint();
        collect_checkpoints(false);
    }
    collect_checkpoints(true);
    return {.final_step = state_.step, .last_checkpoint = last_checkpoint_};
}

}  // namespace

GrpoResult run_grpo(const GrpoOptions& options, const GrpoEvents& events) {
    options.config.validate();
    TANDEM_ASSERT(options.initial && options.tokenizer, "grpo needs the starting model and its tokenizer");
    GrpoRun run(options, events);
    return run.run();
}

}  // namespace tandem::rl

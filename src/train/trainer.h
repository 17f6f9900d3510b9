// The training loop: builds the model and optimizer for a run directory, feeds it batches,
// evaluates, checkpoints, and resumes exactly. It reports progress through callbacks and never
// prints; cli/ decides what the person sees.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "io/bpe_tokenizer.h"
#include "model/weights.h"
#include "train/batch_source.h"
#include "train/data_loader.h"
#include "train/train_config.h"

namespace tandem::train {

enum class ResumeMode {
    Never,     // a fresh run; a run directory that already holds checkpoints is an error
    Required,  // continue from the newest valid checkpoint; none is an error
    Auto,      // continue from the newest valid checkpoint if there is one, else start fresh
};

// The weights a run starts from (config key `init`), with the tokenizer they were trained with.
struct InitialWeights {
    std::unique_ptr<model::Weights> weights;
    io::BpeModel tokenizer;
    std::string source;  // for messages: what was loaded
};

// A run's data when it is not `tandem prepare` token shards (fine-tuning examples, sft.h): the
// trainer takes its micro-batches, the cursor it saves with each checkpoint and its fixed
// evaluation batches from here, and checkpoints carry its tokenizer.
class RunData {
public:
    virtual ~RunData() = default;
    virtual BatchSource& batches() = 0;  // this rank's micro-batches
    virtual DataCursor cursor() const = 0;
    virtual void set_cursor(const DataCursor& cursor) = 0;  // on resume
    // Fixed evaluation batches of batch_size rows; eval_batch fills this rank's rows of one, with
    // the loss weights that say which targets count.
    virtual int64_t n_eval_batches() const = 0;
    virtual void eval_batch(int64_t index, Batch& batch) = 0;
    virtual const std::string& tokenizer_json() const = 0;
    // tokenizer_config.json for the checkpoints (a chat model's template and EOS); "": none.
    virtual std::string tokenizer_config_json() const { return ""; }
    virtual int64_t vocab_size() const = 0;
};

// What a RunData is made for: each rank's share of the batch and the rank.
struct RunDataShape {
    int64_t local_batch = 0, seq_len = 0;
    int rank = 0, n_ranks = 1;
};

struct TrainOptions {
    TrainConfig config;
    std::string data_dir;    // a `tandem prepare` output
    std::string run_dir;     // where config.json, metrics.jsonl, loss.svg, checkpoints/ go
    ResumeMode resume = ResumeMode::Never;
    int64_t stop_after = 0;  // > 0: end cleanly after this step, with a checkpoint
    std::vector<std::string> faults;  // fault injection specs (faults.h)
    // Loads config.init (a fresh run only); cli/ provides it, since reading every model format
    // is infer/'s job.
    std::function<InitialWeights(const std::string& path)> load_init;
    // Set: the run's data comes from here instead of data_dir (which then only names it in the
    // run's config.json), and evaluation weighs each target by its loss weight.
    std::function<std::unique_ptr<RunData>(const RunDataShape&)> make_data;
};

struct StepReport {
    int64_t step = 0, total_steps = 0;
    double loss = 0, lr = 0, grad_norm = 0;
    double tokens_per_s = 0;
    double seconds_left = 0;  // at the recent pace
    std::optional<double> val_loss;
    uint64_t bytes_sent = 0;  // by this rank over the links during the step (0 on one rank)
};

struct TrainEvents {
    std::function<void(const StepReport&)> on_step;
    std::function<void(const std::string&)> on_message;  // notes: resumed from, checkpoint saved
    std::function<void(const std::string&)> on_warning;  // anomalies, failed checkpoint writes
    // The watchdog found a step hung (the text says where); expected to end the process, since
    // the hung call cannot be interrupted. Unset: the warning is logged and the process exits
    // with code 3.
    std::function<void(const std::string&)> on_hang;
};

struct TrainResult {
    int64_t final_step = 0;
    std::string last_checkpoint;
    std::optional<double> val_loss;
    int64_t n_params = 0;
    int rank = 0;  // this process's rank under mpirun (0 alone reports)
};

// Throws Error for bad input (no shards, a config the data cannot feed, a run directory that
// already holds checkpoints without resume, ...); the run directory stays consistent: the
// newest checkpoint in it is always complete.
TrainResult run_training(const TrainOptions& options, const TrainEvents& events);

// The model configuration a training config describes, for a tokenizer of `vocab_size` ids:
// a preset name, or an object with "preset" and fields to change, or a full object. The vocabulary
// follows the tokenizer unless the object sets vocab_size (which must then be large enough).
nlohmann::json resolve_model_json(const nlohmann::json& spec, int64_t vocab_size);

}  // namespace tandem::train

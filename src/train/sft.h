// Supervised fine-tuning (`tandem sft`), callable from C++ as run_sft: a model (config `init`),
// a JSON Lines file of conversations or prompt/completion pairs (io/chat_data.h), rendered with
// the model's chat template and learned on the assistant's tokens only (sft_render.h), packed
// into rows (sft_data.h), and trained by the same loop as `tandem train` (trainer.h):
// checkpoints, bitwise resume, the anomaly guard, metrics.jsonl, loss.svg, held-out loss.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "train/trainer.h"

namespace tandem::train {

enum class BadLinePolicy {
    Error,  // any bad line stops the run before training, naming the lines
    Skip,   // bad lines are reported one by one (on_warning), counted, and left out
};
BadLinePolicy bad_line_policy_from_string(const std::string& text);  // "error", "skip"

struct SftOptions {
    TrainConfig config;     // config.init: the model to fine-tune (required)
    std::string data_path;  // JSON Lines ("-": standard input)
    std::string run_dir;
    ResumeMode resume = ResumeMode::Never;
    int64_t stop_after = 0;  // > 0: end cleanly after this step, with a checkpoint
    std::vector<std::string> faults;
    BadLinePolicy bad_lines = BadLinePolicy::Error;
    // Examples held out for the evaluation loss (eval_every): in [0, 1); 0 with eval_every > 0
    // is refused, since the run would silently evaluate nothing. Unset: 0.05 for a fresh run, the
    // run's own (RUN/sft.json) on resume; a resumed run refuses another value (another split
    // would evaluate on examples it trained on).
    std::optional<double> val_fraction;
    // Loads config.init: weights and tokenizer (with its chat template), as TrainOptions::load_init
    // (cli/ builds it on infer::ModelSource). Called once, also on resume (for the tokenizer).
    std::function<InitialWeights(const std::string& path)> load_init;
};

struct SftResult {
    TrainResult train;
    int64_t n_lines = 0, n_examples = 0, n_skipped = 0;  // of the data file
    int64_t n_train = 0, n_val = 0;                      // examples in each split
    int64_t n_learned = 0;  // learned targets in the training split (one epoch)
    std::string rendering;  // how examples were rendered (SftRenderer::describe)
};

// Throws Error for bad options, a model that cannot be loaded, bad lines under
// BadLinePolicy::Error (each named by file:line), no examples left, and everything
// run_training throws.
SftResult run_sft(const SftOptions& options, const TrainEvents& events);

}  // namespace tandem::train

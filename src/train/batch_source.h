// Where a training step's micro-batches come from. A batch is B rows of T input tokens, their
// next-token targets and optional per-token loss weights. Pre-training cuts batches out of token
// windows (WindowBatchSource); fine-tuning masks the prompt of each example (ExampleBatchSource);
// reinforcement learning will weight tokens. The step pulls batches and knows nothing of where
// they come from; a source knows nothing of models, steps or ranks.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "train/data_loader.h"

namespace tandem::train {

struct Batch {
    int64_t B = 0, T = 0;
    std::vector<int32_t> tokens;      // [B, T]
    std::vector<int32_t> targets;     // [B, T]: model::kIgnoreIndex where nothing is predicted
    std::vector<float> loss_weights;  // [B, T] finite, >= 0 (0/1: a mask), or empty: weight 1

    // Sizes the vectors for B x T, with or without weights, reusing their memory.
    void resize(int64_t B, int64_t T, bool has_loss_weights);
};

class BatchSource {
public:
    virtual ~BatchSource() = default;
    // Fills `batch` (reusing its memory) with this rank's next micro-batch.
    virtual void next(Batch& batch) = 0;
};

// windows [B, T + 1] of consecutive ids -> inputs [B, T] and next-token targets [B, T], no
// weights.
void split_windows(std::span<const int32_t> windows, int64_t B, int64_t T, Batch& batch);

// Pre-training: the loader's next [B, T + 1] windows, split into inputs and targets. The loader
// stays the caller's (its cursor goes into checkpoints).
class WindowBatchSource final : public BatchSource {
public:
    WindowBatchSource(DataLoader& loader, int64_t B, int64_t T);
    void next(Batch& batch) override;

private:
    DataLoader& loader_;
    int64_t B_, T_;
    std::vector<int32_t> windows_;
};

// A prompt and its completion as one sequence of ids; the first n_prompt are the prompt.
struct Example {
    std::vector<int32_t> tokens;
    int64_t n_prompt = 0;
};

// Fine-tuning: one example per row, its first T + 1 ids (longer ones are cut), the rest of the
// row padded with pad_token and targets ignored. Targets that are prompt tokens get weight 0,
// completion tokens weight 1, so that the loss is the mean over completion tokens of the whole
// step. Examples are taken in order and start over at the end.
class ExampleBatchSource final : public BatchSource {
public:
    // Throws Error for no examples, an example of fewer than 2 ids, or n_prompt outside
    // [0, size - 1] (nothing left to learn), naming the example.
    ExampleBatchSource(std::vector<Example> examples, int64_t B, int64_t T, int32_t pad_token = 0);
    void next(Batch& batch) override;

private:
    std::vector<Example> examples_;
    int64_t B_, T_;
    int32_t pad_token_;
    size_t next_ = 0;
};

}  // namespace tandem::train

// The batch sources of pre-training (token windows) and of fine-tuning (prompt-masked examples).
#include "train/batch_source.h"

#include <algorithm>

#include "core/error.h"
#include "model/model.h"

namespace tandem::train {

void Batch::resize(int64_t rows, int64_t cols, bool has_loss_weights) {
    B = rows;
    T = cols;
    tokens.resize(B * T);
    targets.resize(B * T);
    loss_weights.resize(has_loss_weights ? B * T : 0);
}

void split_windows(std::span<const int32_t> windows, int64_t B, int64_t T, Batch& batch) {
    TANDEM_ASSERT(int64_t(windows.size()) == B * (T + 1), windows.size(), B, T);
    batch.resize(B, T, false);
    for (int64_t b = 0; b < B; ++b) {
        const int32_t* row = windows.data() + b * (T + 1);
        std::copy(row, row + T, batch.tokens.begin() + b * T);
        std::copy(row + 1, row + T + 1, batch.targets.begin() + b * T);
    }
}

WindowBatchSource::WindowBatchSource(DataLoader& loader, int64_t B, int64_t T)
    : loader_(loader), B_(B), T_(T), windows_(B * (T + 1)) {}

void WindowBatchSource::next(Batch& batch) {
    loader_.next_batch(windows_);
    split_windows(windows_, B_, T_, batch);
}

ExampleBatchSource::ExampleBatchSource(std::vector<Example> examples, int64_t B, int64_t T,
                                       int32_t pad_token)
    : examples_(std::move(examples)), B_(B), T_(T), pad_token_(pad_token) {
    if (examples_.empty()) throw Error("example batch source: no examples");
    for (size_t i = 0; i < examples_.size(); ++i) {
        const Example& e = examples_[i];
        if (e.tokens.size() < 2)
            throw Error("example ", i, ": has ", e.tokens.size(),
                        " ids; an example needs at least 2 (an input and a target)");
        if (e.n_prompt < 0 || e.n_prompt > int64_t(e.tokens.size()) - 1)
            throw Error("example ", i, ": n_prompt ", e.n_prompt, " leaves no completion in its ",
                        e.tokens.size(), " ids (it must lie in [0, ", e.tokens.size() - 1, "])");
    }
}

void ExampleBatchSource::next(Batch& batch) {
    batch.resize(B_, T_, true);
    for (int64_t b = 0; b < B_; ++b) {
        const Example& e = examples_[next_];
        next_ = (next_ + 1) % examples_.size();
        const int64_t n = std::min<int64_t>(int64_t(e.tokens.size()) - 1, T_);  // targets in row
        for (int64_t t = 0; t < T_; ++t) {
            const int64_t i = b * T_ + t;
            const bool is_real = t < n;
            batch.tokens[i] = is_real ? e.tokens[t] : pad_token_;
            batch.targets[i] = is_real ? e.tokens[t + 1] : model::kIgnoreIndex;
            // Target t is token t + 1: part of the prompt while t + 1 < n_prompt.
            batch.loss_weights[i] = is_real && t + 1 >= e.n_prompt ? 1.0f : 0.0f;
        }
    }
}

}  // namespace tandem::train

// A decoder-only transformer being trained on a backend: its weights (model::Weights, every
// tensor in the compute dtype) beside a gradient buffer of the same layout, one activation arena
// sized for (max_batch, max_seq) at construction, and the training-step pieces (init, forward
// with loss, backward). Families differ only in their layout and views (gpt2.cpp, llama.cpp);
// the block wiring here is shared. The optimizer lives in train/; inference holds a Weights.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string_view>
#include <vector>

#include "backend/backend.h"
#include "backend/buffer.h"
#include "model/activations.h"
#include "model/config.h"
#include "model/param_layout.h"
#include "model/weight_views.h"
#include "model/weights.h"

namespace tandem::model {

// Targets equal to this are ignored by the loss (PyTorch's default ignore_index).
inline constexpr int32_t kIgnoreIndex = -100;

// The total loss weight of a batch: the sum of loss_weights over targets other than
// ignore_index, or their count when loss_weights is empty (weight 1 everywhere). The loss of a
// batch, or of a training step over many, is sum(w_i * loss_i) / this.
double loss_weight_sum(std::span<const int32_t> targets, std::span<const float> loss_weights,
                       int32_t ignore_index = kIgnoreIndex);

// The attention sizes and options of a configuration (heads, RoPE, qk-norm).
AttentionShape attention_shape(const ModelConfig& config);

class Model {
public:
    // compute_dtype: F32, or F64 on the reference backend (gradient checks). Throws Error when
    // the backend does not support the dtype or the sizes are impossible.
    Model(const ModelConfig& config, backend::Backend& backend, DType compute_dtype,
          int64_t max_batch, int64_t max_seq);

    const ModelConfig& config() const { return weights_.config(); }
    const ParamLayout& layout() const { return weights_.layout(); }
    backend::Backend& backend() const { return *be_; }
    DType dtype() const { return dtype_; }
    int64_t max_batch() const { return max_batch_; }
    int64_t max_seq() const { return max_seq_; }
    size_t activation_bytes() const { return arena_.bytes(); }

    Tensor params() const { return weights_.flat(); }  // flat [n_params], compute dtype
    Tensor grads() const { return grads_; }            // flat [n_params], compute dtype
    const Weights& weights() const { return weights_; }
    Weights& weights() { return weights_; }
    const ModelWeights& weight_grads() const { return dweights_; }

    // The family's initialisation (Weights::init), and zero gradients.
    void init(uint64_t seed);
    // Every tensor from `source` (same config; any dtypes, any backend), converted to the
    // compute dtype: fine-tuning starts here. Zeroes the gradients.
    void load_weights(const Weights& source);

    // tokens, targets: host i32 [B, T] row-major (targets empty: logits only). loss_weights:
    // host [B, T] per-token loss weights (finite, >= 0; a 0/1 mask drops tokens), or empty for
    // weight 1 everywhere. Checks the ids and weights, copies them to the device and runs the
    // forward pass. Returns the weighted mean loss, sum(w_i * loss_i) / sum(w_i) over targets
    // other than ignore_index (0 when that weight is 0, or without targets).
    double forward(std::span<const int32_t> tokens, std::span<const int32_t> targets, int64_t B,
                   int64_t T, int32_t ignore_index = kIgnoreIndex,
                   std::span<const float> loss_weights = {});
    // Adds the gradient of the last forward's mean loss to grads(): backward(1 / weight_sum()).
    void backward();
    // Adds the gradient of dloss * sum(w_i * loss_i) over the last forward's targets to grads():
    // a training step over many batches passes 1 / (the weight of all of them). Needs targets;
    // overwrites the logits.
    void backward(double dloss);
    // Ranges [begin, begin + count) of grads() whose gradient a backward pass has finished: the
    // final norm and an untied head, then each block from the last, then the embeddings (a tied
    // head's gradient is complete only with theirs). Together they cover grads() once.
    using GradsFinished = std::function<void(int64_t begin, int64_t count)>;
    // backward(dloss), telling on_finished of each range as soon as no later part of the pass
    // adds to it (its kernels are queued: synchronize the backend before reading it), so that
    // data parallel starts reducing it over the ranks while the rest of the pass runs.
    void backward(double dloss, const GradsFinished& on_finished);
    void zero_grad();
    // Policy gradients (rl/grpo_loss.h): the last forward's per-token cross-entropy,
    // -log p(target), into `out` [B * T] (0 at ignored targets), and new per-token weights for
    // the next backward, [B * T], finite and of any sign (an advantage may be negative). Throws
    // Error naming the position of a weight that is not finite, or a wrong count.
    void token_losses(std::span<double> out) const;
    void set_loss_weights(std::span<const float> loss_weights);

    Tensor logits() const;  // [B, T, V] of the last forward, until backward
    int64_t n_targets() const { return n_targets_; }  // non-ignored targets of the last forward
    // Of the last forward: sum(w_i * loss_i) and sum(w_i) over its non-ignored targets.
    double loss_sum() const { return loss_sum_; }
    double weight_sum() const { return weight_sum_; }

    // Parameters and gradients by Hugging Face name, as f32 in host memory (converted from and
    // to the compute dtype). Throws Error on an unknown name or a wrong element count.
    void load_param(std::string_view name, std::span<const float> values);
    std::vector<float> save_param(std::string_view name) const;
    std::vector<float> save_grad(std::string_view name) const;

private:
    Weights weights_;
    backend::Backend* be_;
    DType dtype_;
    int64_t max_batch_, max_seq_;
    backend::Buffer grad_buffer_, arena_;
    Tensor grads_;
    PlacedLayout placed_grads_;
    ModelWeights dweights_;
    Activations acts_;

    int64_t B_ = 0, T_ = 0;  // of the last forward
    bool has_targets_ = false, has_loss_weights_ = false;
    int32_t ignore_index_ = kIgnoreIndex;
    int64_t n_targets_ = 0;
    double loss_sum_ = 0, weight_sum_ = 0;
    std::vector<char> host_losses_;  // scratch for the weighted loss sum

    void copy_weights_to_device(Tensor device, std::span<const float> host);
    double weighted_loss_sum(Tensor losses, std::span<const float> loss_weights);
};

}  // namespace tandem::model

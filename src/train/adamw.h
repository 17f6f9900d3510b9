// AdamW over a model's flat buffers: the m and v buffers it owns share the model's parameter
// table, weight decay applies to matrix weights only (not norms, biases or embeddings), and the
// global gradient norm is clipped first, with torch.nn.utils.clip_grad_norm_'s semantics.
// The learning-rate schedule is the caller's (lr_schedule.h): step() takes this step's lr.
// An AdamW may own one range of the flat buffer only (ZeRO-1's shard, zero_optimizer.h).
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "backend/backend.h"
#include "backend/buffer.h"
#include "model/param_layout.h"

namespace tandem::train {

struct AdamWConfig {
    float beta1 = 0.9f;
    float beta2 = 0.95f;
    float eps = 1e-8f;
    float weight_decay = 0.1f;  // on matrix weights only
    float grad_clip = 1.0f;     // max global L2 norm; 0 turns clipping off
};

// Elements [begin, begin + count) of the flat parameter buffer; count -1: to its end.
struct ParamRange {
    int64_t begin = 0;
    int64_t count = -1;
};

class AdamW {
public:
    // param_dtype is the model's compute dtype; m and v are f32 (f64 for f64 params) and cover
    // `range` only: params, grads, m and v below are all [range.count].
    AdamW(backend::Backend& backend, const model::ParamLayout& layout, DType param_dtype,
          const AdamWConfig& config, ParamRange range = {});

    // One update of params with grads (both flat [range.count]), the grads clipped as they are
    // read (left as they are). Returns the L2 norm of grads before clipping.
    double step(Tensor params, Tensor grads, float lr);
    // The two halves of step(), for a caller that judges the norm before deciding to update.
    double grad_norm(Tensor grads) const;
    void update(Tensor params, Tensor grads, float lr, double grad_norm);
    // Writes the gradient's elements [begin, begin + count) of the range into out [count].
    using GradientPieces = std::function<void(int64_t begin, int64_t count, float* out)>;
    // update() with a gradient that is never stored whole (host backends only): each piece is
    // written into a small buffer just before the update reads it, so that it never goes to
    // memory (PowerSGD's low-rank estimate). The same bits as update() given the whole.
    void update(Tensor params, const GradientPieces& pieces, float lr, double grad_norm);

    int64_t step_count() const { return step_; }
    void set_step_count(int64_t step) { step_ = step; }  // when resuming from a checkpoint
    const AdamWConfig& config() const { return config_; }
    backend::Backend* backend() const { return be_; }
    Tensor m() const { return m_; }  // flat [range.count]
    Tensor v() const { return v_; }
    ParamRange range() const { return range_; }  // count resolved
    int64_t n_params_total() const { return n_total_; }  // of the whole layout
    size_t state_bytes() const { return m_.bytes() + v_.bytes(); }  // m and v held

private:
    // A run of adjacent tensors with the same decay: one kernel call each, not one per tensor.
    struct Segment {
        int64_t offset, count;
        bool is_decayed;
    };

    // The clipping factor and the step, then `each` segment with its hyperparameters.
    using SegmentUpdate =
        std::function<void(int64_t offset, int64_t count, const backend::AdamWParams&)>;
    void update_segments(float lr, double norm, const SegmentUpdate& each);

    backend::Backend* be_;
    AdamWConfig config_;
    int64_t n_total_;
    ParamRange range_;
    std::vector<Segment> segments_;  // offsets relative to range_.begin
    backend::Buffer m_buffer_, v_buffer_;
    Tensor m_, v_;
    int64_t step_ = 0;
};

}  // namespace tandem::train

// AdamW over a model's flat buffers: the m and v buffers it owns share the model's parameter
// table, weight decay applies to matrix weights only (not norms, biases or embeddings), and the
// global gradient norm is clipped first, with torch.nn.utils.clip_grad_norm_'s semantics.
// The learning-rate schedule is the caller's (lr_schedule.h): step() takes this step's lr.
#pragma once

#include <cstdint>
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

class AdamW {
public:
    // param_dtype is the model's compute dtype; m and v are f32 (f64 for f64 params).
    AdamW(backend::Backend& backend, const model::ParamLayout& layout, DType param_dtype,
          const AdamWConfig& config);

    // One update of params with grads (both flat [n_params]), the grads clipped as they are read
    // (left as they are). Returns the global gradient norm before clipping.
    double step(Tensor params, Tensor grads, float lr);
    // The two halves of step(), for a caller that judges the norm before deciding to update.
    double grad_norm(Tensor grads) const;
    void update(Tensor params, Tensor grads, float lr, double grad_norm);

    int64_t step_count() const { return step_; }
    void set_step_count(int64_t step) { step_ = step; }  // when resuming from a checkpoint
    const AdamWConfig& config() const { return config_; }
    backend::Backend* backend() const { return be_; }
    Tensor m() const { return m_; }  // flat [n_params]
    Tensor v() const { return v_; }

private:
    // A run of adjacent tensors with the same decay: one kernel call each, not one per tensor.
    struct Segment {
        int64_t offset, count;
        bool is_decayed;
    };

    backend::Backend* be_;
    AdamWConfig config_;
    int64_t n_params_;
    std::vector<Segment> segments_;
    backend::Buffer m_buffer_, v_buffer_;
    Tensor m_, v_;
    int64_t step_ = 0;
};

}  // namespace tandem::train

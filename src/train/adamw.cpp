// AdamW: clip, then one fused update per run of same-decay tensors.
#include "train/adamw.h"

#include <algorithm>
#include <cmath>

namespace tandem::train {

AdamW::AdamW(backend::Backend& backend, const model::ParamLayout& layout, DType param_dtype,
             const AdamWConfig& config, ParamRange range)
    : be_(&backend), config_(config), n_total_(layout.n_params()), range_(range) {
    if (range_.count < 0) range_.count = n_total_ - range_.begin;
    TANDEM_ASSERT(range_.begin >= 0 && range_.begin + range_.count <= n_total_, range_.begin,
                  range_.count, n_total_);
    if (!(config.beta1 >= 0 && config.beta1 < 1) || !(config.beta2 >= 0 && config.beta2 < 1))
        throw Error("adamw: betas (", config.beta1, ", ", config.beta2, ") must be in [0, 1)");
    if (!(config.eps > 0)) throw Error("adamw: eps is ", config.eps, " but must be positive");
    if (config.weight_decay < 0 || config.grad_clip < 0)
        throw Error("adamw: weight_decay (", config.weight_decay, ") and grad_clip (",
                    config.grad_clip, ") must not be negative");
    // Each tensor clipped to the range, which may cut a tensor anywhere: the update is
    // element-wise, so the pieces together equal the whole tensor's update bit for bit.
    const int64_t range_end = range_.begin + range_.count;
    for (const auto& e : layout.entries()) {
        const int64_t begin = std::max(e.offset, range_.begin) - range_.begin;
        const int64_t end = std::min(e.offset + e.numel(), range_end) - range_.begin;
        if (end <= begin) continue;
        if (!segments_.empty() && segments_.back().is_decayed == e.is_decayed() &&
            segments_.back().offset + segments_.back().count == begin) {
            segments_.back().count += end - begin;
        } else {
            segments_.push_back({begin, end - begin, e.is_decayed()});
        }
    }
    const DType state = param_dtype == DType::F64 ? DType::F64 : DType::F32;
    const size_t bytes = static_cast<size_t>(range_.count) * dtype_size(state);
    m_buffer_ = backend::Buffer(*be_, bytes);
    v_buffer_ = backend::Buffer(*be_, bytes);
    m_ = m_buffer_.tensor(state, {range_.count});
    v_ = v_buffer_.tensor(state, {range_.count});
    be_->fill_zero(m_);
    be_->fill_zero(v_);
}

double AdamW::step(Tensor params, Tensor grads, float lr) {
    const double norm = grad_norm(grads);
    update(params, grads, lr, norm);
    return norm;
}

double AdamW::grad_norm(Tensor grads) const {
    TANDEM_ASSERT(grads.numel() == range_.count, grads.numel(), range_.count);
    return std::sqrt(be_->sum_squares(grads));
}

void AdamW::update(Tensor params, Tensor grads, float lr, double norm) {
    TANDEM_ASSERT(params.numel() == range_.count && grads.numel() == range_.count, params.numel(),
                  grads.numel(), range_.count);
    update_segments(lr, norm, [&](int64_t offset, int64_t count, const backend::AdamWParams& hp) {
        be_->adamw_update(params.slice(offset, count), grads.slice(offset, count),
                          m_.slice(offset, count), v_.slice(offset, count), hp);
    });
}

void AdamW::update(Tensor params, const GradientPieces& pieces, float lr, double norm) {
    TANDEM_ASSERT(params.numel() == range_.count && params.device == Device::Host, params.numel(),
                  range_.count);
    // 64 KB of gradient at a time: written, then read by the update while it is in L2.
    constexpr int64_t kPiece = 16384;
    thread_local std::vector<float> piece(kPiece);
    update_segments(lr, norm, [&](int64_t offset, int64_t count, const backend::AdamWParams& hp) {
        for (int64_t at = offset; at < offset + count; at += kPiece) {
            const int64_t n = std::min(kPiece, offset + count - at);
            pieces(at, n, piece.data());
            be_->adamw_update(params.slice(at, n), Tensor(piece.data(), DType::F32, {n}),
                              m_.slice(at, n), v_.slice(at, n), hp);
        }
    });
}

void AdamW::update_segments(float lr, double norm, const SegmentUpdate& each) {
    // clip_grad_norm_: coef = max_norm / (norm + 1e-6), applied only when it shrinks; the update
    // multiplies each gradient by it as it reads it (one pass over the gradients fewer).
    float grad_scale = 1.0f;
    if (config_.grad_clip > 0) {
        const double coef = config_.grad_clip / (norm + 1e-6);
        if (coef < 1.0) grad_scale = static_cast<float>(coef);
    }
    ++step_;
    for (const Segment& s : segments_) {
        const backend::AdamWParams hp{.lr = lr,
                                      .beta1 = config_.beta1,
                                      .beta2 = config_.beta2,
                                      .eps = config_.eps,
                                      .weight_decay = s.is_decayed ? config_.weight_decay : 0.0f,
                                      .step = step_,
                                      .grad_scale = grad_scale};
        each(s.offset, s.count, hp);
    }
}

}  // namespace tandem::train

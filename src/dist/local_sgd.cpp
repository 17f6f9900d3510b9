// The outer step of local-steps training: the averaged parameter change since the anchor is
// the outer gradient, and Nesterov momentum (as in PyTorch's SGD, which DiLoCo uses) moves the
// anchor by it.
#include "dist/local_sgd.h"

#include <algorithm>
#include <cstring>

#include "core/error.h"

namespace tandem::dist {

void LocalStepsOptions::validate() const {
    if (local_steps < 1) throw Error("config key 'local_steps' must be at least 1, got ", local_steps);
    if (!(outer_lr > 0)) throw Error("config key 'outer_lr' must be positive, got ", outer_lr);
    if (!(outer_momentum >= 0 && outer_momentum < 1)) {
        throw Error("config key 'outer_momentum' must be in [0, 1), got ", outer_momentum);
    }
}

OuterOptimizer::OuterOptimizer(LocalStepsOptions options, Tensor params, Communicator& comm,
                               GradientCompressor* compressor)
    : options_(options), params_(params), comm_(comm), compressor_(compressor) {
    options_.validate();
    if (params.device != Device::Host || params.dtype != DType::F32) {
        throw Error("OuterOptimizer: the parameters are ", params.str(), " on ", device_name(params.device),
                    "; local steps keep an f32 master copy on the host");
    }
    comm_.broadcast(params_, 0);
    const float* p = params_.as<float>();
    anchor_.assign(p, p + params_.numel());
    momentum_.assign(params_.numel(), 0.0f);
}

bool OuterOptimizer::after_inner_step() {
    ++n_inner_;
    if (n_inner_ % options_.local_steps != 0) return false;
    synchronise();
    return true;
}

void OuterOptimizer::synchronise() {
    const int64_t n = params_.numel();
    float* p = params_.as<float>();
    // The outer gradient, anchor - params, is built in the parameters' place: they are replaced
    // by the new anchor below anyway.
    for (int64_t i = 0; i < n; ++i) p[i] = anchor_[i] - p[i];
    if (compressor_) {
        compressor_->all_reduce(comm_, params_);
    } else {
        comm_.all_reduce(params_);
    }
    const float inv_ranks = 1.0f / static_cast<float>(comm_.size());
    const float lr = static_cast<float>(options_.outer_lr), mu = static_cast<float>(options_.outer_momentum);
    for (int64_t i = 0; i < n; ++i) {
        const float g = p[i] * inv_ranks;
        momentum_[i] = mu * momentum_[i] + g;
        anchor_[i] -= lr * (g + mu * momentum_[i]);  // Nesterov: the step looks ahead along v
        p[i] = anchor_[i];
    }
}

std::vector<std::pair<std::string, Tensor>> OuterOptimizer::state() {
    const int64_t n = params_.numel();
    return {{"outer_anchor", Tensor(anchor_.data(), DType::F32, {n})},
            {"outer_momentum", Tensor(momentum_.data(), DType::F32, {n})}};
}

}  // namespace tandem::dist

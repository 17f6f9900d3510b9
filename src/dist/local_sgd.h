// Local steps (DiLoCo, Douillard et al. 2023), the `local_steps=H` option: each rank takes H
// inner optimiser steps on its own data without communicating, then the ranks average their
// parameter change since the last synchronisation (the outer gradient) and apply an outer
// Nesterov-momentum step to the shared anchor, which every rank continues from. The inner
// optimiser (AdamW) and its state stay per rank; this class owns the anchor and the momentum.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "dist/communicator.h"
#include "dist/compression.h"

namespace tandem::dist {

struct LocalStepsOptions {
    int64_t local_steps = 1;      // H: inner steps per synchronisation
    double outer_lr = 0.7;        // DiLoCo's outer learning rate
    double outer_momentum = 0.9;  // and Nesterov momentum
    void validate() const;        // throws Error naming the key and the value
};

class OuterOptimizer {
public:
    // params: f32[n] host, the master parameters that the inner optimiser updates in place.
    // Construction is collective: rank 0's parameters are broadcast, so every rank starts from
    // the same anchor. comm (and compressor, when given: the outer gradient is then sent
    // compressed, with its error feedback) must outlive this object.
    OuterOptimizer(LocalStepsOptions options, Tensor params, Communicator& comm,
                   GradientCompressor* compressor = nullptr);

    // Called after every inner step; every H-th call synchronises (a collective) and returns
    // true: params become the new anchor, identical on every rank.
    bool after_inner_step();
    // The outer step now, whatever the count (a collective): the trainer also synchronises
    // before it evaluates, checkpoints or ends, so that those see the shared parameters.
    void synchronise();

    int64_t inner_steps() const { return n_inner_; }  // inner steps taken so far
    // A checkpoint keeps these ("outer_anchor", "outer_momentum") and inner_steps(); a resumed
    // run loads them into these views and calls restore_inner_steps.
    std::vector<std::pair<std::string, Tensor>> state();
    void restore_inner_steps(int64_t n) { n_inner_ = n; }

private:

    LocalStepsOptions options_;
    Tensor params_;
    Communicator& comm_;
    GradientCompressor* compressor_;
    std::vector<float> anchor_, momentum_;
    int64_t n_inner_ = 0;
};

}  // namespace tandem::dist

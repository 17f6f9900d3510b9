// The gradient exchange: builds the compressor (PowerSGD's blocks are the model's matrices)
// and the outer optimiser, and runs the outer step on the schedule the trainer needs.
#include "train/grad_exchange.h"

#include <sstream>

#include "core/error.h"

namespace tandem::train {

namespace {

// Every two-dimensional parameter is a matrix PowerSGD may factor; the compressor itself
// keeps the small ones (whose factors would not be smaller) and the vectors dense.
std::vector<dist::GradientBlock> matrix_blocks(const model::ParamLayout& layout) {
    std::vector<dist::GradientBlock> blocks;
    for (const model::ParamEntry& e : layout.entries())
        if (e.shape.ndim == 2) blocks.push_back({.offset = e.offset, .rows = e.shape[0], .cols = e.shape[1]});
    return blocks;
}

}  // namespace

GradientExchange::GradientExchange(const TrainConfig& cfg, model::Model& model, dist::Communicator& comm)
    : cfg_(cfg), model_(model), comm_(comm) {
    if (comm.size() == 1) return;  // no link to save
    const dist::CompressionSpec spec = dist::parse_compression(cfg.compress);
    const Tensor params = model.params();
    if (spec.kind != dist::CompressionKind::None)
        // The seed only draws PowerSGD's first Q, the same on every rank.
        compressor_ = std::make_unique<dist::GradientCompressor>(spec, params.numel(),
                                                                 matrix_blocks(model.layout()), cfg.seed);
    if (cfg.local_steps > 1) {
        outer_ = std::make_unique<dist::OuterOptimizer>(
            dist::LocalStepsOptions{cfg.local_steps, cfg.outer_lr, cfg.outer_momentum}, params, comm,
            compressor_.get());
    }
}

GradientExchange::~GradientExchange() = default;

void GradientExchange::reduce(Tensor grads) {
    TANDEM_ASSERT(!is_local());
    if (compressor_) {
        compressor_->all_reduce(comm_, grads);
    } else {
        comm_.all_reduce(grads);
    }
}

bool GradientExchange::after_step(int64_t step, bool must_sync) {
    if (!outer_) return false;
    if (step % cfg_.local_steps != 0 && !must_sync) return false;
    outer_->synchronise();
    return true;
}

std::string GradientExchange::describe() const {
    std::ostringstream out;
    out << "compress=" << (compressor_ ? compressor_->spec().str() : "none");
    if (outer_)
        out << ", local_steps=" << cfg_.local_steps << " (outer lr " << cfg_.outer_lr << ", momentum "
            << cfg_.outer_momentum << ")";
    if (compressor_ || outer_)
        out << "; error feedback and outer momentum are per run: a resumed run starts them afresh";
    return out.str();
}

}  // namespace tandem::train

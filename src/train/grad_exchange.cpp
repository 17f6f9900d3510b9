// The gradient exchange: builds the compressor (PowerSGD's blocks are the model's matrices)
// and the outer optimiser, runs the outer step on the schedule the trainer needs, and saves and
// restores their state with the checkpoints.
#include "train/grad_exchange.h"

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <sstream>

#include "io/safetensors.h"

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

std::optional<double> GradientExchange::reduce(Tensor grads) {
    TANDEM_ASSERT(!is_local());
    if (!compressor_) {
        comm_.all_reduce(grads);
        return std::nullopt;
    }
    compressor_->all_reduce(comm_, grads, /*may_defer_output=*/true);
    return compressor_->sum_squares_last();
}

AdamW::GradientPieces GradientExchange::output_pieces(Tensor grads) const {
    const float* dense = grads.as<float>();
    return [this, dense](int64_t begin, int64_t count, float* out) {
        compressor_->fill_output(dense, begin, count, out);
    };
}

void GradientExchange::write_output(Tensor grads) const {
    float* g = grads.as<float>();
    compressor_->fill_output(g, 0, grads.numel(), g);
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
    return out.str();
}

std::vector<std::pair<std::string, Tensor>> GradientExchange::state_views() {
    std::vector<std::pair<std::string, Tensor>> views;
    if (compressor_) views = compressor_->state();
    if (outer_)
        for (auto& v : outer_->state()) views.push_back(std::move(v));
    return views;
}

std::vector<std::pair<std::string, Tensor>> GradientExchange::own_parts(const AdamW& optimizer) {
    std::vector<std::pair<std::string, Tensor>> own;
    for (auto& [name, view] : state_views())
        if (name == "residual") own.emplace_back(name, view);
    if (outer_) {  // between synchronisations each rank's inner AdamW sees its own gradients
        own.emplace_back("exp_avg", optimizer.m());
        own.emplace_back("exp_avg_sq", optimizer.v());
    }
    // The communicator reduces host memory, and data parallel runs on the cpu backend.
    for (const auto& [name, t] : own) TANDEM_ASSERT(t.device == Device::Host && t.dtype == DType::F32, name);
    return own;
}

std::map<std::string, std::string> GradientExchange::settings() const {
    return {{"world_size", std::to_string(comm_.size())},
            {"compress", compressor_ ? compressor_->spec().str() : "none"},
            {"local_steps", std::to_string(outer_ ? cfg_.local_steps : 1)}};
}

void GradientExchange::save(CheckpointSnapshot* into, const AdamW& optimizer) {
    if (!is_active()) return;
    if (into) {
        into->exchange.clear();
        for (auto& [name, view] : state_views())
            into->exchange.push_back({name, std::vector<float>(view.as<float>(), view.as<float>() + view.numel())});
        into->exchange_settings = settings();
    }
    // Every other rank's own part, one rank after the other (a broadcast from it, so that no
    // rank holds more than one part beside its own): rank 0 writes them all.
    const std::vector<std::pair<std::string, Tensor>> mine_parts = own_parts(optimizer);
    std::vector<float> theirs;
    for (int r = 1; r < comm_.size(); ++r)
        for (const auto& [name, mine] : mine_parts) {
            const int64_t n = mine.numel();
            theirs.resize(static_cast<size_t>(n));
            comm_.broadcast(comm_.rank() == r ? mine : Tensor(theirs.data(), DType::F32, {n}), r);
            if (into && comm_.rank() == 0)
                into->exchange.push_back({"rank" + std::to_string(r) + "." + name, theirs});
        }
}

void GradientExchange::start_afresh() {
    for (auto& [name, view] : state_views())
        std::fill(view.as<float>(), view.as<float>() + view.numel(), 0.0f);  // Q is drawn again
    if (outer_) {  // the anchor is where every rank is now
        for (auto& [name, view] : outer_->state())
            if (name == "outer_anchor")
                model_.backend().copy_to_host(view.as<float>(), model_.params().data, model_.params().bytes());
    }
}

void GradientExchange::restore(const CheckpointSnapshot& from) {
    if (!is_active()) return;
    if (from.exchange.empty()) return start_afresh();
    for (auto& [name, view] : state_views()) {
        auto it = std::find_if(from.exchange.begin(), from.exchange.end(),
                               [&](const NamedValues& t) { return t.name == name; });
        TANDEM_ASSERT(it != from.exchange.end() && int64_t(it->values.size()) == view.numel(), name);
        std::copy(it->values.begin(), it->values.end(), view.as<float>());
    }
}

std::string GradientExchange::load(const std::string& dir, AdamW& optimizer) {
    const std::string path = (std::filesystem::path(dir) / "exchange.safetensors").string();
    const bool has_file = std::filesystem::exists(path);
    if (!is_active())
        return has_file ? path + " holds a compressed or local-steps run's state, which this run (one rank, or "
                                 "compress=none and local_steps=1) does not use: it is dropped"
                        : "";
    const std::string afresh =
        ": the error-feedback residuals, PowerSGD's factors and the outer momentum start afresh, so the run "
        "goes on close to, not bitwise like, one that never stopped";
    if (!has_file) return path + " does not exist (a checkpoint of a run without it)" + afresh;
    const io::SafetensorsReader reader(path);
    for (const auto& [key, value] : settings()) {
        const auto it = reader.metadata().find(key);
        const std::string was = it == reader.metadata().end() ? "(none)" : it->second;
        if (was != value)
            return path + " was written with " + key + "=" + was + ", this run has " + key + "=" + value + afresh;
    }
    // Shared tensors by their name; this rank's own by rank 0's plain name or "rank<r>.".
    const std::string prefix = comm_.rank() == 0 ? "" : "rank" + std::to_string(comm_.rank()) + ".";
    auto load_into = [&](const std::string& name, float* out, int64_t n) {
        const io::SafetensorsTensor& t = reader.get(name, DType::F32, {n});
        std::memcpy(out, t.data, static_cast<size_t>(n) * 4);
    };
    for (auto& [name, view] : state_views())
        load_into(name == "residual" ? prefix + name : name, view.as<float>(), view.numel());
    if (outer_ && comm_.rank() != 0) {  // rank 0's moments are optimizer.safetensors'
        std::vector<float> moment(static_cast<size_t>(optimizer.m().numel()));
        load_into(prefix + "exp_avg", moment.data(), optimizer.m().numel());
        from_host_f32(*optimizer.backend(), optimizer.m(), moment.data());
        load_into(prefix + "exp_avg_sq", moment.data(), optimizer.v().numel());
        from_host_f32(*optimizer.backend(), optimizer.v(), moment.data());
    }
    return "";
}

}  // namespace tandem::train

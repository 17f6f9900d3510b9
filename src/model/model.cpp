// The Model: buffers, init, and the forward and backward wiring shared by every family:
// embed -> blocks (model/block.h) -> final_norm -> lm_head -> cross-entropy.
#include "model/model.h"

#include <algorithm>
#include <cmath>

#include <nlohmann/json.hpp>

#include "core/quant.h"
#include "model/block.h"
#include "model/families.h"
#include "model/layers/embedding.h"

namespace tandem::model {

AttentionShape attention_shape(const ModelConfig& c) {
    return {.H = c.n_heads, .Hkv = c.n_heads_kv, .D = c.head_dim, .has_rope = c.has_rope(),
            .rope = c.rope(), .has_qk_norm = c.qk_norm, .norm_eps = c.norm_eps};
}

namespace {
Tensor rows(Tensor t) { return t.view({t.rows(), t.cols()}); }
}  // namespace

Model::Model(const ModelConfig& config, backend::Backend& backend, DType compute_dtype,
             int64_t max_batch, int64_t max_seq)
    : weights_(config, backend, compute_dtype), be_(&backend), dtype_(compute_dtype),
      max_batch_(max_batch), max_seq_(max_seq) {
    const ModelConfig& c = weights_.config();
    if (!be_->supports(dtype_))
        throw Error("backend ", be_->name(), " does not support compute dtype ",
                    dtype_name(dtype_));
    if (max_batch <= 0 || max_seq <= 0)
        throw Error("model: batch (", max_batch, ") and sequence length (", max_seq,
                    ") must be positive");
    if (max_seq > c.max_seq_len)
        throw Error("model: sequence length ", max_seq, " exceeds the model's max_seq_len (",
                    c.max_seq_len, ")");
    grad_buffer_ = backend::Buffer(*be_, weights_.bytes());
    grads_ = grad_buffer_.tensor(dtype_, {layout().n_params()});
    placed_grads_ = PlacedLayout::uniform(layout(), grads_);
    dweights_ = bind_weights(c, placed_grads_);
    be_->fill_zero(grads_);

    // Measure the largest step, allocate once; each forward re-lays the (B, T) it gets inside.
    const size_t arena_bytes =
        layout_activations(acts_, nullptr, be_->device(), c, dtype_, max_batch, max_seq);
    arena_ = backend::Buffer(*be_, arena_bytes);
}

void Model::init(uint64_t seed) {
    weights_.init(seed);
    zero_grad();
}

void Model::load_weights(const Weights& source) {
    const ModelConfig& c = config();
    if (config_to_json(source.config()) != config_to_json(c))
        throw Error("the weights are of another model: ", config_to_json(source.config()).dump(),
                    " against ", config_to_json(c).dump());
    std::vector<char> host;
    for (const ParamEntry& e : layout().entries()) {
        host.resize(dtype_bytes(dtype_, e.numel()));
        source.get(e.name, host.data(), dtype_);
        weights_.set(e.name, host.data(), dtype_, e.numel());
    }
    zero_grad();
}

double Model::forward(std::span<const int32_t> tokens, std::span<const int32_t> targets,
                      int64_t B, int64_t T, int32_t ignore_index,
                      std::span<const float> loss_weights) {
    // Validate at the boundary: after this, kernels trust the ids.
    if (B <= 0 || B > max_batch_ || T <= 0 || T > max_seq_)
        throw Error("model: batch ", B, " x sequence ", T, " is outside the ", max_batch_, " x ",
                    max_seq_, " the model was sized for");
    const size_t n = static_cast<size_t>(B * T);
    if (tokens.size() != n) throw Error("model: got ", tokens.size(), " tokens for ", B, " x ", T);
    if (!targets.empty() && targets.size() != n)
        throw Error("model: got ", targets.size(), " targets for ", B, " x ", T);
    const ModelConfig& c = config();
    const int64_t V = c.vocab_size;
    for (size_t i = 0; i < n; ++i)
        if (tokens[i] < 0 || tokens[i] >= V)
            throw Error("model: token ", tokens[i], " at position ", i, " is outside [0, ", V, ")");
    n_targets_ = 0;
    for (size_t i = 0; i < targets.size(); ++i) {
        if (targets[i] == ignore_index) continue;
        if (targets[i] < 0 || targets[i] >= V)
            throw Error("model: target ", targets[i], " at position ", i, " is outside [0, ", V,
                        ") and is not the ignore index ", ignore_index);
        ++n_targets_;
    }
    if (!loss_weights.empty()) {
        if (targets.empty()) throw Error("model: loss weights were given without targets");
        if (loss_weights.size() != n)
            throw Error("model: got ", loss_weights.size(), " loss weights for ", B, " x ", T);
        for (size_t i = 0; i < n; ++i)
            if (!std::isfinite(loss_weights[i]) || loss_weights[i] < 0)
                throw Error("model: loss weight ", loss_weights[i], " at position ", i,
                            " is not a finite number >= 0");
    }
    B_ = B;
    T_ = T;
    has_targets_ = !targets.empty();
    has_loss_weights_ = !loss_weights.empty();
    ignore_index_ = ignore_index;
    weight_sum_ = loss_weight_sum(targets, loss_weights, ignore_index);

    Activations& a = acts_;
    layout_activations(a, arena_.data(), be_->device(), c, dtype_, B, T);
    be_->copy_to_device(a.tokens.data, tokens.data(), n * sizeof(int32_t));
    if (has_targets_) be_->copy_to_device(a.targets.data, targets.data(), n * sizeof(int32_t));
    if (has_loss_weights_) copy_weights_to_device(a.loss_weights, loss_weights);

    const ModelWeights& w = weights_.views();
    const AttentionShape shape = attention_shape(c);
    embedding_forward(*be_, a.embed, a.tokens, w.embed);
    for (size_t l = 0; l < a.blocks.size(); ++l)
        block_forward(*be_, a.blocks[l], a.proj, w.blocks[l], shape);
    Tensor last = a.blocks.empty() ? a.embed : a.blocks.back().out;
    norm_forward(*be_, rows(a.head_in), a.final_norm, rows(last), w.final_norm);
    const Tensor targets_flat = has_targets_ ? a.targets.view({B * T}) : Tensor{};
    loss_sum_ = lm_head_forward(*be_, a.head, rows(a.head_in), w.lm_head, targets_flat,
                                ignore_index);
    if (has_loss_weights_) loss_sum_ = weighted_loss_sum(a.head.losses, loss_weights);
    return weight_sum_ > 0 ? loss_sum_ / weight_sum_ : 0.0;
}

void Model::copy_weights_to_device(Tensor device, std::span<const float> host) {
    if (device.dtype == DType::F32) {
        be_->copy_to_device(device.data, host.data(), host.size_bytes());
        return;
    }
    std::vector<double> wide(host.begin(), host.end());  // f64 statistics (gradient checks)
    be_->copy_to_device(device.data, wide.data(), wide.size() * sizeof(double));
}

// sum(w_i * loss_i) in double on the host: the losses are one value per position, small beside
// the logits they come from, and the weights are on the host already.
double Model::weighted_loss_sum(Tensor losses, std::span<const float> loss_weights) {
    host_losses_.resize(losses.bytes());
    be_->copy_to_host(host_losses_.data(), losses.data, losses.bytes());
    double total = 0;
    for (size_t i = 0; i < loss_weights.size(); ++i) {
        const double l = losses.dtype == DType::F64
                             ? reinterpret_cast<const double*>(host_losses_.data())[i]
                             : reinterpret_cast<const float*>(host_losses_.data())[i];
        if (loss_weights[i] != 0) total += double(loss_weights[i]) * l;  // ignored rows hold 0
    }
    return total;
}

void Model::backward() {
    // d(mean loss)/d(loss_n) = w_n / sum(w); no weight means no gradient.
    backward(weight_sum_ > 0 ? 1.0 / weight_sum_ : 0.0);
}

void Model::backward(double dloss) { backward(dloss, GradsFinished{}); }

void Model::backward(double dloss, const GradsFinished& on_finished) {
    TANDEM_ASSERT(has_targets_, "backward needs a forward with targets");
    // Where each block's parameters start in the flat buffer (the layouts put the embeddings,
    // then each block beginning with its first norm, then the final norm and an untied head).
    const auto offset = [&](const Tensor& t) {
        return (t.as<std::byte>() - grads_.as<std::byte>()) / int64_t(dtype_size(grads_.dtype));
    };
    std::vector<int64_t> starts;  // of block 0 .. L-1, then of the final norm
    for (const BlockWeights& b : dweights_.blocks) starts.push_back(offset(b.attn_norm.weight));
    starts.push_back(offset(dweights_.final_norm.weight));
    const bool is_ordered = std::is_sorted(starts.begin(), starts.end()) && starts.front() > 0;
    const auto finished = [&](int64_t begin, int64_t end) {
        if (on_finished && is_ordered) on_finished(begin, end - begin);
    };
    Activations& a = acts_;
    const ModelWeights& w = weights_.views();
    const ModelWeights& dw = dweights_;
    const AttentionShape shape = attention_shape(config());
    const Tensor loss_weights = has_loss_weights_ ? a.loss_weights.view({B_ * T_}) : Tensor{};

    lm_head_backward(*be_, rows(a.dnorm), dw.lm_head, a.head, rows(a.head_in), w.lm_head,
                     a.targets.view({B_ * T_}), loss_weights, static_cast<float>(dloss),
                     ignore_index_);
    Tensor last = a.blocks.empty() ? a.embed : a.blocks.back().out;
    be_->fill_zero(a.dres);  // norms add into the residual gradient
    norm_backward(*be_, rows(a.dres), dw.final_norm, rows(a.dnorm), rows(last), w.final_norm,
                  a.final_norm);
    finished(starts.back(), grads_.numel());
    for (size_t l = a.blocks.size(); l-- > 0;) {
        block_backward(*be_, a.dres, a.dnorm, dw.blocks[l], a.attn_scratch, a.mlp_scratch,
                       a.blocks[l], w.blocks[l], shape);
        finished(starts[l], starts[l + 1]);
    }
    embedding_backward(*be_, dw.embed, a.dres, a.tokens);
    finished(0, starts.front());
    if (on_finished && !is_ordered) on_finished(0, grads_.numel());
}

void Model::zero_grad() { be_->fill_zero(grads_); }

void Model::token_losses(std::span<double> out) const {
    TANDEM_ASSERT(has_targets_ && out.size() == size_t(B_ * T_), out.size(), B_, T_);
    const Tensor losses = acts_.head.losses;
    std::vector<char> host(losses.bytes());
    be_->copy_to_host(host.data(), losses.data, host.size());
    convert_values(out.data(), DType::F64, host.data(), losses.dtype, B_ * T_);
}

void Model::set_loss_weights(std::span<const float> loss_weights) {
    TANDEM_ASSERT(has_targets_, "loss weights need a forward with targets");
    if (loss_weights.size() != size_t(B_ * T_))
        throw Error("model: got ", loss_weights.size(), " loss weights for the last forward's ", B_, " x ", T_);
    for (size_t i = 0; i < loss_weights.size(); ++i)
        if (!std::isfinite(loss_weights[i]))
            throw Error("model: loss weight ", loss_weights[i], " at position ", i, " is not finite");
    copy_weights_to_device(acts_.loss_weights.view({B_ * T_}), loss_weights);
    has_loss_weights_ = true;
}

double loss_weight_sum(std::span<const int32_t> targets, std::span<const float> loss_weights,
                       int32_t ignore_index) {
    double total = 0;
    for (size_t i = 0; i < targets.size(); ++i)
        if (targets[i] != ignore_index) total += loss_weights.empty() ? 1.0 : loss_weights[i];
    return total;
}

Tensor Model::logits() const {
    TANDEM_ASSERT(B_ > 0, "logits before any forward");
    return acts_.head.logits.view({B_, T_, config().vocab_size});
}

void Model::load_param(std::string_view name, std::span<const float> values) {
    weights_.set(name, values.data(), DType::F32, static_cast<int64_t>(values.size()));
}

std::vector<float> Model::save_param(std::string_view name) const {
    return weights_.get_f32(name);
}

std::vector<float> Model::save_grad(std::string_view name) const {
    const Tensor g = placed_grads_.view(name);
    std::vector<char> staged(g.bytes());
    be_->copy_to_host(staged.data(), g.data, staged.size());
    std::vector<float> out(g.numel());
    convert_values(out.data(), DType::F32, staged.data(), g.dtype, g.numel());
    return out;
}

}  // namespace tandem::model

// The Model: buffers, init, and the forward and backward wiring shared by every family.
// A block is   mid = x + attention(attn_norm(x));   out = mid + mlp(mlp_norm(mid)),
// and the model is   embed -> blocks -> final_norm -> lm_head -> cross-entropy.
#include "model/model.h"

#include "core/rng.h"
#include "model/families.h"
#include "model/layers/embedding.h"

namespace tandem::model {

AttentionShape attention_shape(const ModelConfig& c) {
    return {.H = c.n_heads, .Hkv = c.n_heads_kv, .D = c.head_dim, .has_rope = c.has_rope(),
            .rope = c.rope(), .has_qk_norm = c.qk_norm, .norm_eps = c.norm_eps};
}

namespace {

ModelWeights bind_weights(const ModelConfig& c, const ParamLayout& layout, Tensor flat) {
    return c.family == Family::Gpt2 ? gpt2_weights(c, layout, flat)
                                    : llama_weights(c, layout, flat);
}

Tensor rows(Tensor t) { return t.view({t.rows(), t.cols()}); }

}  // namespace

Model::Model(const ModelConfig& config, backend::Backend& backend, DType compute_dtype,
             int64_t max_batch, int64_t max_seq)
    : config_(config), be_(&backend), dtype_(compute_dtype), max_batch_(max_batch),
      max_seq_(max_seq) {
    config_.validate();
    if (!be_->supports(dtype_))
        throw Error("backend ", be_->name(), " does not support compute dtype ",
                    dtype_name(dtype_));
    if (max_batch <= 0 || max_seq <= 0)
        throw Error("model: batch (", max_batch, ") and sequence length (", max_seq,
                    ") must be positive");
    if (max_seq > config_.max_seq_len)
        throw Error("model: sequence length ", max_seq, " exceeds the model's max_seq_len (",
                    config_.max_seq_len, ")");
    layout_ = make_layout(config_);
    const size_t param_bytes = static_cast<size_t>(layout_.n_params()) * dtype_size(dtype_);
    param_buffer_ = backend::Buffer(*be_, param_bytes);
    grad_buffer_ = backend::Buffer(*be_, param_bytes);
    params_ = param_buffer_.tensor(dtype_, {layout_.n_params()});
    grads_ = grad_buffer_.tensor(dtype_, {layout_.n_params()});
    weights_ = bind_weights(config_, layout_, params_);
    dweights_ = bind_weights(config_, layout_, grads_);
    be_->fill_zero(params_);
    be_->fill_zero(grads_);

    // Measure the largest step, allocate once; each forward re-lays the (B, T) it gets inside.
    const size_t arena_bytes =
        layout_activations(acts_, nullptr, be_->device(), config_, dtype_, max_batch, max_seq);
    arena_ = backend::Buffer(*be_, arena_bytes);
}

void Model::init(uint64_t seed) {
    std::vector<float> host;
    const auto& entries = layout_.entries();
    for (size_t i = 0; i < entries.size(); ++i) {
        const ParamEntry& e = entries[i];
        host.assign(e.numel(), 0.0f);
        if (e.init == ParamInit::Ones) {
            host.assign(e.numel(), 1.0f);
        } else if (e.init == ParamInit::Normal) {
            const RngKey key{.seed = seed, .purpose = RngPurpose::Init, .rank = 0,
                             .step = static_cast<uint32_t>(i)};
            fill_normal(host.data(), e.numel(), key);
            for (float& x : host) x *= e.init_std;
        }
        copy_in(layout_.view(params_, e.name), host);
    }
    zero_grad();
}

double Model::forward(std::span<const int32_t> tokens, std::span<const int32_t> targets,
                      int64_t B, int64_t T, int32_t ignore_index) {
    // Validate at the boundary: after this, kernels trust the ids.
    if (B <= 0 || B > max_batch_ || T <= 0 || T > max_seq_)
        throw Error("model: batch ", B, " x sequence ", T, " is outside the ", max_batch_, " x ",
                    max_seq_, " the model was sized for");
    const size_t n = static_cast<size_t>(B * T);
    if (tokens.size() != n) throw Error("model: got ", tokens.size(), " tokens for ", B, " x ", T);
    if (!targets.empty() && targets.size() != n)
        throw Error("model: got ", targets.size(), " targets for ", B, " x ", T);
    const int64_t V = config_.vocab_size;
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
    B_ = B;
    T_ = T;
    has_targets_ = !targets.empty();
    ignore_index_ = ignore_index;

    Activations& a = acts_;
    layout_activations(a, arena_.data(), be_->device(), config_, dtype_, B, T);
    be_->copy_to_device(a.tokens.data, tokens.data(), n * sizeof(int32_t));
    if (has_targets_) be_->copy_to_device(a.targets.data, targets.data(), n * sizeof(int32_t));

    const ModelWeights& w = weights_;
    const AttentionShape shape = attention_shape(config_);
    embedding_forward(*be_, a.embed, a.tokens, w.embed);
    for (size_t l = 0; l < a.blocks.size(); ++l) {
        const BlockWeights& bw = w.blocks[l];
        const BlockActivations& b = a.blocks[l];
        norm_forward(*be_, rows(b.attn_in), b.attn_norm, rows(b.x), bw.attn_norm);
        attention_forward(*be_, a.proj, b.attn, b.attn_in, bw.attn, shape);
        be_->add(b.mid, b.x, a.proj);
        norm_forward(*be_, rows(b.mlp_in), b.mlp_norm, rows(b.mid), bw.mlp_norm);
        mlp_forward(*be_, rows(a.proj), b.mlp, rows(b.mlp_in), bw.mlp);
        be_->add(b.out, b.mid, a.proj);
    }
    Tensor last = a.blocks.empty() ? a.embed : a.blocks.back().out;
    norm_forward(*be_, rows(a.head_in), a.final_norm, rows(last), w.final_norm);
    const Tensor targets_flat = has_targets_ ? a.targets.view({B * T}) : Tensor{};
    const double loss_sum = lm_head_forward(*be_, a.head, rows(a.head_in), w.lm_head,
                                            targets_flat, ignore_index);
    return n_targets_ > 0 ? loss_sum / static_cast<double>(n_targets_) : 0.0;
}

void Model::backward() {
    TANDEM_ASSERT(has_targets_, "backward needs a forward with targets");
    Activations& a = acts_;
    const ModelWeights& w = weights_;
    const ModelWeights& dw = dweights_;
    const AttentionShape shape = attention_shape(config_);
    // d(mean loss)/d(loss_n) = 1 / n_targets; no targets means no gradient.
    const float dloss = n_targets_ > 0 ? static_cast<float>(1.0 / n_targets_) : 0.0f;

    lm_head_backward(*be_, rows(a.dnorm), dw.lm_head, a.head, rows(a.head_in), w.lm_head,
                     a.targets.view({B_ * T_}), dloss, ignore_index_);
    Tensor last = a.blocks.empty() ? a.embed : a.blocks.back().out;
    be_->fill_zero(a.dres);  // norms add into the residual gradient
    norm_backward(*be_, rows(a.dres), dw.final_norm, rows(a.dnorm), rows(last), w.final_norm,
                  a.final_norm);
    for (size_t l = a.blocks.size(); l-- > 0;) {
        const BlockWeights& bw = w.blocks[l];
        const BlockWeights& dbw = dw.blocks[l];
        const BlockActivations& b = a.blocks[l];
        // dres is d/d(out); the residual add passes it unchanged to mid, and the MLP branch adds
        // its share through the norm.
        mlp_backward(*be_, rows(a.dnorm), dbw.mlp, a.mlp_scratch, rows(a.dres), rows(b.mlp_in),
                     b.mlp, bw.mlp);
        norm_backward(*be_, rows(a.dres), dbw.mlp_norm, rows(a.dnorm), rows(b.mid), bw.mlp_norm,
                      b.mlp_norm);
        attention_backward(*be_, a.dnorm, dbw.attn, a.attn_scratch, a.dres, b.attn_in, b.attn,
                           bw.attn, shape);
        norm_backward(*be_, rows(a.dres), dbw.attn_norm, rows(a.dnorm), rows(b.x), bw.attn_norm,
                      b.attn_norm);
    }
    embedding_backward(*be_, dw.embed, a.dres, a.tokens);
}

void Model::zero_grad() { be_->fill_zero(grads_); }

Tensor Model::logits() const {
    TANDEM_ASSERT(B_ > 0, "logits before any forward");
    return acts_.head.logits.view({B_, T_, config_.vocab_size});
}

void Model::copy_in(Tensor dst, std::span<const float> values) {
    if (static_cast<int64_t>(values.size()) != dst.numel())
        throw Error("model: got ", values.size(), " values for a tensor of ", dst.numel());
    if (dtype_ == DType::F32) {
        be_->copy_to_device(dst.data, values.data(), dst.bytes());
    } else {
        TANDEM_ASSERT(dtype_ == DType::F64, dtype_name(dtype_));
        std::vector<double> wide(values.begin(), values.end());
        be_->copy_to_device(dst.data, wide.data(), dst.bytes());
    }
}

std::vector<float> Model::copy_out(Tensor src) const {
    std::vector<float> out(src.numel());
    if (dtype_ == DType::F32) {
        be_->copy_to_host(out.data(), src.data, src.bytes());
    } else {
        std::vector<double> wide(src.numel());
        be_->copy_to_host(wide.data(), src.data, src.bytes());
        for (size_t i = 0; i < out.size(); ++i) out[i] = static_cast<float>(wide[i]);
    }
    return out;
}

void Model::load_param(std::string_view name, std::span<const float> values) {
    const ParamEntry& e = layout_.get(name);
    if (static_cast<int64_t>(values.size()) != e.numel())
        throw Error("model: parameter ", name, " has ", e.numel(), " elements ",
                    e.shape.str(), " but got ", values.size());
    copy_in(layout_.view(params_, name), values);
}

std::vector<float> Model::save_param(std::string_view name) const {
    return copy_out(layout_.view(params_, name));
}

std::vector<float> Model::save_grad(std::string_view name) const {
    return copy_out(layout_.view(grads_, name));
}

}  // namespace tandem::model

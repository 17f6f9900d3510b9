// One forward pass over new positions against the key/value cache:
//   x = embed(tokens, positions pos..pos+Tq)
//   per block:  qkv = proj(norm(x)) [-> qk-norm] [-> RoPE];  cache <- k, v;
//               x += out(attend(q, cache));  x += mlp(norm(x))
//   logits = lm_head(final_norm(x at each sequence's last new position))
#include "infer/decoder.h"

#include "core/error.h"
#include "model/layers/embedding.h"
#include "model/model.h"  // attention_shape

namespace tandem::infer {

namespace {
Tensor rows(Tensor t) { return t.view({t.rows(), t.cols()}); }
}  // namespace

Decoder::Decoder(const model::Weights& weights, int64_t max_batch, int64_t max_seq,
                 int64_t max_chunk)
    : weights_(weights), be_(weights.backend()), max_batch_(max_batch), max_seq_(max_seq),
      max_chunk_(max_chunk) {
    const model::ModelConfig& c = weights.config();
    // The compute dtype: the weights' own when they are uniform in one the backend computes in,
    // else f32, with the products reading the weights in their storage dtypes (--quant).
    dtype_ = weights.is_uniform() && be_.supports(weights.dtype()) ? weights.dtype() : DType::F32;
    if (!be_.supports(dtype_))
        throw Error("decoder: the ", be_.name(), " backend does not compute in f32");
    if (max_seq > c.max_seq_len)
        throw Error("decoder: ", max_seq, " positions exceed the model's context of ", c.max_seq_len);
    TANDEM_ASSERT(max_batch > 0 && max_seq > 0 && max_chunk > 0, max_batch, max_seq, max_chunk);
    const DType dtype = dtype_;
    const DType stats = backend::stats_dtype(dtype);
    const size_t elem = dtype_size(dtype);
    const int64_t B = max_batch, N = max_batch * max_chunk, KV = c.n_heads_kv * c.head_dim;

    cache_buffer_ = backend::Buffer(be_, 2 * c.n_layers * B * max_seq * KV * elem);
    for (int64_t l = 0; l < 2 * c.n_layers; ++l) {
        auto* base = static_cast<char*>(cache_buffer_.data()) + l * B * max_seq * KV * elem;
        (l % 2 ? v_cache_ : k_cache_).push_back(Tensor(base, dtype, {B, max_seq, KV}, be_.device()));
    }

    // Every scratch tensor, each 64-byte aligned within one allocation.
    const int64_t F_in = c.family == model::Family::Llama ? 2 * c.d_ffn : c.d_ffn;
    const std::vector<std::pair<int64_t, size_t>> sizes = {
        {N, 4}, {N * c.d_model, elem}, {N * c.d_model, elem}, {N * c.d_model, elem},
        {N * c.qkv_dim(), elem}, {N * c.qkv_dim(), elem}, {N * (c.n_heads + c.n_heads_kv), dtype_size(stats)},
        {N * c.n_heads * c.head_dim, elem}, {N * c.d_model, elem}, {N, dtype_size(stats)},
        {N, dtype_size(stats)}, {N * F_in, elem}, {N * c.d_ffn, elem}, {B * c.d_model, elem},
        {B * c.vocab_size, elem}};
    size_t total = 0;
    for (auto [n, size] : sizes) total += (n * size + 63) / 64 * 64;
    scratch_buffer_ = backend::Buffer(be_, total);

    tokens_ = take({N});
    tokens_.dtype = DType::I32;
    x_ = take({N, c.d_model});
    mid_ = take({N, c.d_model});
    normed_ = take({N, c.d_model});
    qkv_ = take({N, c.qkv_dim()});
    qkv_normed_ = take({N, c.qkv_dim()});
    qk_rstd_ = take({N * (c.n_heads + c.n_heads_kv)});
    qk_rstd_.dtype = stats;
    att_ = take({N, c.n_heads * c.head_dim});
    proj_ = take({N, c.d_model});
    norm_mean_ = take({N});
    norm_mean_.dtype = stats;
    norm_rstd_ = take({N});
    norm_rstd_.dtype = stats;
    mlp_pre_ = take({N, F_in});
    mlp_act_ = take({N, c.d_ffn});
    last_ = take({B, c.d_model});
    logits_ = take({B, c.vocab_size});
}

Tensor Decoder::take(Shape shape) {
    // Sized by the model dtype; i32 and f32 stats fit in an f32-or-wider slot.
    const size_t bytes = static_cast<size_t>(shape.numel()) * dtype_size(dtype_);
    Tensor t(static_cast<char*>(scratch_buffer_.data()) + scratch_used_, dtype_, shape, be_.device());
    scratch_used_ += (bytes + 63) / 64 * 64;
    TANDEM_ASSERT(scratch_used_ <= scratch_buffer_.bytes(), scratch_used_, scratch_buffer_.bytes());
    return t;
}

const std::vector<float>& Decoder::feed(std::span<const int32_t> tokens, int64_t B, int64_t Tq) {
    const model::ModelConfig& c = weights_.config();
    if (B < 1 || B > max_batch_ || Tq < 1 || Tq > max_chunk_)
        throw Error("decoder: a chunk of ", B, " x ", Tq, " tokens does not fit ", max_batch_, " x ", max_chunk_);
    if (position_ + Tq > max_seq_)
        throw Error("decoder: position ", position_ + Tq, " is past the context of ", max_seq_, " tokens");
    TANDEM_ASSERT(static_cast<int64_t>(tokens.size()) == B * Tq, tokens.size(), B, Tq);
    for (int32_t id : tokens)
        if (id < 0 || id >= c.vocab_size) throw Error("token id ", id, " is outside the vocabulary of ", c.vocab_size);

    const int64_t N = B * Tq, pos = position_;
    // The first N rows of a scratch tensor sized for max_batch * max_chunk rows.
    const auto first = [N](Tensor t) { return t.slice(0, N * t.cols()).view({N, t.cols()}); };
    const auto first_stats = [N](Tensor t) { return t.slice(0, N); };
    Tensor tokens_dev = tokens_.slice(0, N).view({B, Tq});
    be_.copy_to_device(tokens_dev.data, tokens.data(), N * sizeof(int32_t));

    const model::ModelWeights& w = weights_.views();
    const model::AttentionShape shape = model::attention_shape(c);
    Tensor x = first(x_), mid = first(mid_), normed = first(normed_), att = first(att_);
    Tensor proj = first(proj_);
    const model::NormSaved norm_saved{first_stats(norm_mean_), first_stats(norm_rstd_)};
    const model::MlpSaved mlp_saved{first(mlp_pre_), first(mlp_act_)};

    model::embedding_forward(be_, x.view({B, Tq, c.d_model}), tokens_dev, w.embed, pos);
    for (int64_t l = 0; l < c.n_layers; ++l) {
        const model::BlockWeights& bw = w.blocks[l];
        model::norm_forward(be_, normed, norm_saved, x, bw.attn_norm);
        Tensor qkv = first(qkv_).view({B, Tq, c.qkv_dim()});
        model::linear_forward(be_, rows(qkv), normed, bw.attn.qkv);
        if (shape.has_qk_norm) {
            Tensor normed_qkv = first(qkv_normed_).view({B, Tq, c.qkv_dim()});
            be_.qk_norm_forward(normed_qkv, qk_rstd_.slice(0, N * (c.n_heads + c.n_heads_kv)), qkv,
                                bw.attn.q_norm, bw.attn.k_norm, shape.H, shape.Hkv, shape.norm_eps);
            qkv = normed_qkv;
        }
        if (shape.has_rope) be_.rope_forward(qkv, shape.H, shape.Hkv, shape.rope, pos);
        be_.kv_cache_write(k_cache_[l], v_cache_[l], qkv, shape.H, shape.Hkv, pos);
        be_.attention_cached_forward(att.view({B, Tq, c.n_heads * c.head_dim}), qkv, k_cache_[l],
                                     v_cache_[l], shape.H, shape.Hkv, pos);
        model::linear_forward(be_, proj, att, bw.attn.out);
        be_.add(mid, x, proj);
        model::norm_forward(be_, normed, norm_saved, mid, bw.mlp_norm);
        model::mlp_forward(be_, proj, mlp_saved, normed, bw.mlp);
        be_.add(x, mid, proj);
    }
    // Only the last new position of each sequence needs logits.
    const size_t row_bytes = c.d_model * dtype_size(dtype_);
    for (int64_t b = 0; b < B; ++b)
        be_.copy(static_cast<char*>(last_.data) + b * row_bytes,
                 static_cast<char*>(x.data) + ((b * Tq) + Tq - 1) * row_bytes, row_bytes);
    Tensor last = last_.slice(0, B * c.d_model).view({B, c.d_model});
    Tensor normed_last = normed.slice(0, B * c.d_model).view({B, c.d_model});
    const model::NormSaved last_saved{norm_mean_.slice(0, B), norm_rstd_.slice(0, B)};
    model::norm_forward(be_, normed_last, last_saved, last, w.final_norm);
    Tensor logits = logits_.slice(0, B * c.vocab_size).view({B, c.vocab_size});
    model::linear_forward(be_, logits, normed_last, model::Linear{w.lm_head, {}, false});

    host_logits_.resize(B * c.vocab_size);
    if (dtype_ == DType::F32) {
        be_.copy_to_host(host_logits_.data(), logits.data, logits.bytes());
    } else {
        std::vector<double> wide(B * c.vocab_size);
        be_.copy_to_host(wide.data(), logits.data, logits.bytes());
        for (size_t i = 0; i < wide.size(); ++i) host_logits_[i] = static_cast<float>(wide[i]);
    }
    position_ += Tq;
    return host_logits_;
}

}  // namespace tandem::infer

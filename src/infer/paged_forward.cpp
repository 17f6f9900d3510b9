// One step of many sequences over the paged cache:
//   x = embed(tokens at their own positions)
//   per block (model/block.h, the training block's wiring): attention writes each row's k and v
//       to its page slot and reads the row's context through the page table
//   logits = lm_head(final_norm(x)) on the requested rows only, at most R rows per pass
#include "infer/paged_forward.h"

#include <algorithm>
#include <string>

#include "core/error.h"
#include "core/quant.h"
#include "model/arena.h"
#include "model/block.h"
#include "model/model.h"  // attention_shape

namespace tandem::infer {

namespace {

std::string joined(const std::vector<std::string_view>& names) {
    std::string out;
    for (std::string_view name : names) out += (out.empty() ? "" : ", ") + std::string(name);
    return out;
}

}  // namespace

PagedForward::PagedForward(const model::Weights& weights, const PagedForwardOptions& options)
    : weights_(weights),
      be_(weights.backend()),
      options_(options),
      dtype_(compute_dtype_for(weights)) {
    const model::ModelConfig& c = weights.config();
    if (const auto missing = be_.missing_kernels(); !missing.empty())
        throw Error("paged forward: the ", be_.name(), " backend lacks the inference kernels ",
                    joined(missing), "; run inference on a backend that has them (cpu)");
    if (!be_.supports(dtype_))
        throw Error("paged forward: the ", be_.name(), " backend does not compute in ",
                    dtype_name(dtype_), "; convert the weights to f32 at load");
    const DType kv = options.kv_dtype;
    if (kv != DType::F32 && kv != DType::F16 && !(kv == DType::F64 && dtype_ == DType::F64))
        throw Error("paged forward: the kv cache dtype ", dtype_name(kv),
                    " is not f32 or f16 (f64 only with f64 weights)");
    if (options.max_tokens_per_step < 1 || options.pages.n_pages < 1 ||
        options.pages.page_size < 1 || options.logit_rows_per_pass < 1)
        throw Error("paged forward: max_tokens_per_step (", options.max_tokens_per_step,
                    "), pages.n_pages (", options.pages.n_pages, "), pages.page_size (",
                    options.pages.page_size, ") and logit_rows_per_pass (",
                    options.logit_rows_per_pass, ") must all be positive");

    // The cache: per layer k pages then v pages, each [n_pages, page_size, Hkv D].
    const int64_t P = options.pages.n_pages, S = options.pages.page_size;
    const int64_t KV = c.n_heads_kv * c.head_dim;
    const size_t layer_bytes = dtype_bytes(kv, P * S * KV);
    cache_ = backend::Buffer(be_, 2 * c.n_layers * layer_bytes);
    for (int64_t l = 0; l < c.n_layers; ++l) {
        char* base = static_cast<char*>(cache_.data()) + 2 * l * layer_bytes;
        k_pages_.emplace_back(base, kv, Shape{P, S, KV}, be_.device());
        v_pages_.emplace_back(base + layer_bytes, kv, Shape{P, S, KV}, be_.device());
    }
    Step largest;
    const int64_t N = options.max_tokens_per_step;
    scratch_ = backend::Buffer(
        be_, lay_out(largest, nullptr, N, std::min(N, options.logit_rows_per_pass)));
}

DType PagedForward::compute_dtype_for(const model::Weights& weights) {
    return weights.is_uniform() && weights.dtype() == DType::F64 ? DType::F64 : DType::F32;
}

int64_t PagedForward::vocab_size() const {
    return weights_.config().vocab_size;
}
int64_t PagedForward::max_positions() const {
    return weights_.config().max_seq_len;
}

size_t PagedForward::lay_out(Step& st, void* base, int64_t N, int64_t R) const {
    const model::ModelConfig& c = weights_.config();
    model::ArenaCarver arena(base, be_.device());
    const DType stats = backend::stats_dtype(dtype_);
    const int64_t C = c.d_model, QKV = c.qkv_dim(), HD = c.n_heads * c.head_dim;
    const int64_t F_pre = c.family == model::Family::Gpt2 ? c.d_ffn : 2 * c.d_ffn;
    const auto take = [&](Shape shape) { return arena.take(dtype_, shape); };
    const auto norm_saved = [&](int64_t rows) {
        model::NormSaved s;
        if (c.family == model::Family::Gpt2) s.mean = arena.take(stats, {rows});  // LayerNorm
        s.rstd = arena.take(stats, {rows});
        return s;
    };

    st.tokens = arena.take(DType::I32, {N});
    st.positions = arena.take(DType::I32, {N});
    st.seq_index = arena.take(DType::I32, {N});
    // One set of activations for every layer. x and out share the residual (x is dead once mid
    // is formed), attn_in and mlp_in one buffer (attn_in is dead once qkv is formed), and the two
    // norms their statistics; nothing is kept for a backward pass.
    model::BlockActivations& b = st.block;
    b.x = b.out = take({N, C});
    b.attn_in = b.mlp_in = take({N, C});
    b.attn_norm = b.mlp_norm = norm_saved(N);
    if (c.qk_norm) {
        b.attn.qkv_raw = take({1, N, QKV});
        b.attn.qk_rstd = arena.take(stats, {1, N, c.n_heads + c.n_heads_kv});
    }
    b.attn.qkv = take({1, N, QKV});  // [1, N, ...]: one "sequence" of N rows for qk-norm
    b.attn.att = take({1, N, HD});
    b.mid = take({N, C});
    b.mlp.pre = take({N, F_pre});
    b.mlp.act = take({N, c.d_ffn});
    st.proj = take({N, C});

    st.head_x = take({R, C});
    st.head_in = take({R, C});
    st.head_norm = norm_saved(R);
    st.logits = take({R, c.vocab_size});
    return arena.bytes();
}

void PagedForward::validate(const StepBatch& batch) const {
    const model::ModelConfig& c = weights_.config();
    const int64_t N = batch.size(), V = c.vocab_size, T_max = c.max_seq_len;
    const int64_t n_pages = options_.pages.n_pages, page_size = options_.pages.page_size;
    const int64_t S = batch.n_seqs, per_seq = batch.pages_per_seq;
    if (N < 1 || N > options_.max_tokens_per_step)
        throw Error("step batch: ", N, " tokens, but a step holds 1 to ",
                    options_.max_tokens_per_step, " (max_tokens_per_step)");
    if (static_cast<int64_t>(batch.positions.size()) != N ||
        static_cast<int64_t>(batch.seq_index.size()) != N)
        throw Error("step batch: ", N, " tokens but ", batch.positions.size(), " positions and ",
                    batch.seq_index.size(), " seq_index entries");
    if (S < 1 || per_seq < 1 || static_cast<int64_t>(batch.page_table.size()) != S * per_seq)
        throw Error("step batch: page_table holds ", batch.page_table.size(),
                    " entries, but n_seqs x pages_per_seq is ", S, " x ", per_seq,
                    " (both must be positive)");

    // The furthest position each sequence reaches in this step: its pages [0, that / page_size]
    // must all be real pages, since attention reads every one of them.
    std::vector<int64_t> furthest(S, -1);
    for (int64_t n = 0; n < N; ++n) {
        const int64_t id = batch.tokens[n], pos = batch.positions[n], s = batch.seq_index[n];
        if (id < 0 || id >= V)
            throw Error("step batch: token ", id, " at row ", n, " is outside the vocabulary [0, ",
                        V, ")");
        if (pos < 0 || pos >= T_max)
            throw Error("step batch: position ", pos, " at row ", n,
                        " is outside the model's context [0, ", T_max, ")");
        if (s < 0 || s >= S)
            throw Error("step batch: seq_index ", s, " at row ", n, " is outside the page table's ",
                        S, " sequences");
        if (pos / page_size >= per_seq)
            throw Error("step batch: position ", pos, " at row ", n, " (sequence ", s,
                        ") is past its page table of ", per_seq, " pages of ", page_size);
        furthest[s] = std::max(furthest[s], pos);
    }
    for (int64_t s = 0; s < S; ++s)
        for (int64_t i = 0; furthest[s] >= 0 && i <= furthest[s] / page_size; ++i) {
            const int32_t page = batch.page_table[s * per_seq + i];
            if (page < 0 || page >= n_pages)
                throw Error("step batch: sequence ", s, " reaches position ", furthest[s],
                            " but its page ", i, " is ", page, ", not a page of the pool [0, ",
                            n_pages, ")");
        }
    for (const auto& [from, to] : batch.page_copies)
        if (from < 0 || from >= n_pages || to < 0 || to >= n_pages || from == to)
            throw Error("step batch: page copy ", from, " -> ", to, " is not between two pages of the pool [0, ",
                        n_pages, ")");
    for (size_t i = 0; i < batch.logit_rows.size(); ++i) {
        const int32_t row = batch.logit_rows[i];
        if (row < 0 || row >= N || (i > 0 && row <= batch.logit_rows[i - 1]))
            throw Error("step batch: logit_rows[", i, "] = ", row, " is not a row of the step [0, ",
                        N, ") above the one before it");
    }
}

Tensor PagedForward::page_table_on_device(const StepBatch& batch) {
    const size_t bytes = batch.page_table.size() * sizeof(int32_t);
    if (page_table_.bytes() < bytes)  // grows to the largest table seen, then stays
        page_table_ = backend::Buffer(be_, std::max(bytes, 2 * page_table_.bytes()));
    be_.copy_to_device(page_table_.data(), batch.page_table.data(), bytes);
    return page_table_.tensor(DType::I32, {batch.n_seqs, batch.pages_per_seq});
}

std::span<const float> PagedForward::run(const StepBatch& batch) {
    validate(batch);
    const model::ModelConfig& c = weights_.config();
    const int64_t N = batch.size(), n_logits = static_cast<int64_t>(batch.logit_rows.size());
    const int64_t R = std::min(n_logits, options_.logit_rows_per_pass);
    for (const auto& [from, to] : batch.page_copies)
        for (int64_t l = 0; l < c.n_layers; ++l)
            for (const Tensor& pages : {k_pages_[l], v_pages_[l]}) {
                const size_t page_bytes = pages.bytes() / static_cast<size_t>(options_.pages.n_pages);
                char* base = static_cast<char*>(pages.data);
                be_.copy(base + to * page_bytes, base + from * page_bytes, page_bytes);
            }
    Step st;
    lay_out(st, scratch_.data(), N, R);
    be_.copy_to_device(st.tokens.data, batch.tokens.data(), N * sizeof(int32_t));
    be_.copy_to_device(st.positions.data, batch.positions.data(), N * sizeof(int32_t));
    be_.copy_to_device(st.seq_index.data, batch.seq_index.data(), N * sizeof(int32_t));
    const Tensor page_table = page_table_on_device(batch);

    const model::ModelWeights& w = weights_.views();
    const model::AttentionShape shape = model::attention_shape(c);
    be_.embedding_at_forward(st.block.x, st.tokens, st.positions, w.embed.wte, w.embed.wpe);
    for (int64_t l = 0; l < c.n_layers; ++l) {
        const model::PagedAttention paged{k_pages_[l], v_pages_[l], page_table, st.seq_index,
                                          st.positions};
        model::block_forward(be_, st.block, st.proj, w.blocks[l], shape, &paged);
    }

    host_logits_.resize(n_logits * c.vocab_size);
    for (int64_t first = 0; first < n_logits; first += R) {
        const auto rows = std::span(batch.logit_rows).subspan(first, std::min(R, n_logits - first));
        logits_of(st, rows, host_logits_.data() + first * c.vocab_size);
    }
    return host_logits_;
}

void PagedForward::logits_of(const Step& st, std::span<const int32_t> rows, float* host) {
    const model::ModelConfig& c = weights_.config();
    const model::ModelWeights& w = weights_.views();
    const int64_t R = static_cast<int64_t>(rows.size()), C = c.d_model, V = c.vocab_size;
    const size_t row_bytes = dtype_bytes(dtype_, C);
    for (int64_t i = 0; i < R; ++i)
        be_.copy(static_cast<char*>(st.head_x.data) + i * row_bytes,
                 static_cast<const char*>(st.block.out.data) + rows[i] * row_bytes, row_bytes);
    const auto first = [](Tensor t, int64_t n, int64_t cols) {
        return t.empty() ? t : t.slice(0, n * cols).view(cols == 1 ? Shape{n} : Shape{n, cols});
    };
    const Tensor x = first(st.head_x, R, C), normed = first(st.head_in, R, C);
    const model::NormSaved saved{first(st.head_norm.mean, R, 1), first(st.head_norm.rstd, R, 1)};
    model::norm_forward(be_, normed, saved, x, w.final_norm);
    // A backend in host memory writes f32 logits where the caller reads them: at batch 1 the
    // copy of 151,936 logits was 3% of a Qwen3-0.6B decode step.
    const bool is_direct = be_.device() == Device::Host && dtype_ == DType::F32;
    const Tensor logits = is_direct ? Tensor(host, DType::F32, {R, V}) : first(st.logits, R, V);
    model::linear_forward(be_, logits, normed,
                          model::Linear{w.lm_head, {}, false});  // [V, C]: x W^T
    if (is_direct) return;
    if (dtype_ == DType::F32) {
        be_.copy_to_host(host, logits.data, logits.bytes());
    } else {
        staged_.resize(logits.bytes());
        be_.copy_to_host(staged_.data(), logits.data, logits.bytes());
        convert_values(host, DType::F32, staged_.data(), dtype_, R * V);
    }
}

}  // namespace tandem::infer

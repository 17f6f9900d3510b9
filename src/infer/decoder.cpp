// The Decoder as one StepBatch per feed: B sequences of Tq new tokens each, all at the same
// positions, sequence b in pages [b * pages_per_seq, (b + 1) * pages_per_seq) of the pool, and
// logits for each sequence's last new row.
#include "infer/decoder.h"

#include "core/error.h"

namespace tandem::infer {

namespace {

constexpr int64_t kPageSize = 16;

PagedForwardOptions options_for(const model::Weights& weights, int64_t max_batch, int64_t max_seq,
                                int64_t max_chunk) {
    const int64_t context = weights.config().max_seq_len;
    if (max_batch < 1 || max_seq < 1 || max_chunk < 1)
        throw Error("decoder: batch (", max_batch, "), context (", max_seq, ") and chunk (",
                    max_chunk, ") must be positive");
    if (max_seq > context)
        throw Error("decoder: ", max_seq, " positions exceed the model's context of ", context);
    const int64_t pages_per_seq = (max_seq + kPageSize - 1) / kPageSize;
    const DType compute = PagedForward::compute_dtype_for(weights);
    return {.max_tokens_per_step = max_batch * max_chunk,
            .pages = {max_batch * pages_per_seq, kPageSize},
            // f64 weights (reference checks) keep an f64 cache, so the decoder stays exact.
            .kv_dtype = compute == DType::F64 ? DType::F64 : DType::F32,
            .logit_rows_per_pass = max_batch};
}

}  // namespace

Decoder::Decoder(const model::Weights& weights, int64_t max_batch, int64_t max_seq,
                 int64_t max_chunk)
    : max_batch_(max_batch), max_seq_(max_seq), max_chunk_(max_chunk),
      forward_(weights, options_for(weights, max_batch, max_seq, max_chunk)) {
    const int64_t pages = forward_.pages().n_pages;
    page_table_.resize(pages);
    for (int64_t i = 0; i < pages; ++i) page_table_[i] = static_cast<int32_t>(i);
    batch_.pages_per_seq = pages / max_batch;
}

const std::vector<float>& Decoder::feed(std::span<const int32_t> tokens, int64_t B, int64_t Tq) {
    if (B < 1 || B > max_batch_ || Tq < 1 || Tq > max_chunk_)
        throw Error("decoder: a chunk of ", B, " x ", Tq, " tokens does not fit ", max_batch_,
                    " x ", max_chunk_);
    if (position_ + Tq > max_seq_)
        throw Error("decoder: position ", position_ + Tq, " is past the context of ", max_seq_,
                    " tokens");
    TANDEM_ASSERT(static_cast<int64_t>(tokens.size()) == B * Tq, tokens.size(), B, Tq);

    StepBatch& b = batch_;
    b.tokens.assign(tokens.begin(), tokens.end());
    b.positions.resize(B * Tq);
    b.seq_index.resize(B * Tq);
    b.logit_rows.resize(B);
    for (int64_t s = 0; s < B; ++s) {
        for (int64_t t = 0; t < Tq; ++t) {
            b.positions[s * Tq + t] = static_cast<int32_t>(position_ + t);
            b.seq_index[s * Tq + t] = static_cast<int32_t>(s);
        }
        b.logit_rows[s] = static_cast<int32_t>(s * Tq + Tq - 1);
    }
    b.n_seqs = B;
    b.page_table.assign(page_table_.begin(), page_table_.begin() + B * b.pages_per_seq);
    const std::span<const float> logits = forward_.run(b);
    logits_.assign(logits.begin(), logits.end());
    position_ += Tq;
    return logits_;
}

}  // namespace tandem::infer

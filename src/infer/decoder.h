// Incremental decoding of a fixed batch of sequences that advance together: a thin wrapper over
// PagedForward (which owns the cache and the block wiring) in which sequence b holds its own
// range of pages, so the prefix is never recomputed. The weights stay their owner's.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "infer/paged_forward.h"
#include "model/weights.h"

namespace tandem::infer {

class Decoder {
public:
    // Room for `max_batch` sequences of up to `max_seq` positions (at most the model's
    // max_seq_len), fed `max_chunk` positions at a time at most. Errors as PagedForward's (a
    // backend lacking an inference kernel, ...).
    Decoder(const model::Weights& weights, int64_t max_batch, int64_t max_seq, int64_t max_chunk);

    // Feeds tokens [B, Tq] (host, row-major) at the current position of every sequence and
    // returns the logits of each sequence's last new position, [B, V] on the host.
    const std::vector<float>& feed(std::span<const int32_t> tokens, int64_t B, int64_t Tq);
    void reset() { position_ = 0; }
    int64_t position() const { return position_; }
    int64_t capacity() const { return max_seq_; }
    int64_t max_chunk() const { return max_chunk_; }
    const model::Weights& weights() const { return forward_.weights(); }

private:
    int64_t max_batch_, max_seq_, max_chunk_;
    int64_t position_ = 0;
    PagedForward forward_;
    std::vector<int32_t> page_table_;  // [max_batch, pages_per_seq]: sequence b's pages in order
    StepBatch batch_;
    std::vector<float> logits_;
};

}  // namespace tandem::infer

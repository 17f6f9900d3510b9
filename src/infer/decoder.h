// Incremental decoding: runs a model's weights over new tokens only, keeping every layer's keys
// and values in a cache, so the prefix is never recomputed. It owns the cache and its own small
// activation buffers; the weights stay their owner's.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "backend/buffer.h"
#include "model/weights.h"

namespace tandem::infer {

class Decoder {
public:
    // Room for `max_batch` sequences of up to `max_seq` positions (at most the model's
    // max_seq_len), fed `max_chunk` positions at a time at most. The weights must all be in a
    // compute dtype of their backend (f32; f64 on reference): Error otherwise.
    Decoder(const model::Weights& weights, int64_t max_batch, int64_t max_seq, int64_t max_chunk);

    // Feeds tokens [B, Tq] (host, row-major) at the current position of every sequence and
    // returns the logits of each sequence's last new position, [B, V] on the host.
    const std::vector<float>& feed(std::span<const int32_t> tokens, int64_t B, int64_t Tq);
    void reset() { position_ = 0; }
    int64_t position() const { return position_; }
    int64_t capacity() const { return max_seq_; }
    int64_t max_chunk() const { return max_chunk_; }
    const model::Weights& weights() const { return weights_; }

private:
    Tensor take(Shape shape);  // a piece of the scratch buffer

    const model::Weights& weights_;
    backend::Backend& be_;
    DType dtype_;
    int64_t max_batch_, max_seq_, max_chunk_;
    int64_t position_ = 0;

    backend::Buffer cache_buffer_, scratch_buffer_;
    size_t scratch_used_ = 0;
    std::vector<Tensor> k_cache_, v_cache_;  // per layer [B, S, Hkv * D]
    Tensor tokens_, x_, mid_, normed_, qkv_, qkv_normed_, qk_rstd_, att_, proj_;
    Tensor norm_mean_, norm_rstd_, mlp_pre_, mlp_act_, last_, logits_;
    std::vector<float> host_logits_;
};

}  // namespace tandem::infer

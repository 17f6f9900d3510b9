// A model's weights apart from training: its config, the parameter table, one buffer on a
// backend, and each tensor in its own storage dtype (f32, bf16, f16, or GGML's Q8_0 and Q4_0
// blocks, so a GGUF tensor maps to it without conversion). Inference, export and a frozen
// reference model hold this and nothing more. Training's Model keeps its parameters in one whose
// tensors all have the compute dtype, so that the buffer is the flat span that the optimizer,
// the all-reduce and the checksums work on.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string_view>
#include <vector>

#include "backend/backend.h"
#include "backend/buffer.h"
#include "model/config.h"
#include "model/param_layout.h"
#include "model/weight_views.h"

namespace tandem::model {

class Weights {
public:
    using DTypeRule = std::function<DType(const ParamEntry&)>;

    // Zero-filled weights of a validated config, every tensor in `dtype`.
    Weights(const ModelConfig& config, backend::Backend& backend, DType dtype);
    // Each tensor in dtype_of(entry); a block dtype needs rows of whole blocks (asserted: choose
    // with storage_dtype_rule).
    Weights(const ModelConfig& config, backend::Backend& backend, const DTypeRule& dtype_of);
    Weights(Weights&&) noexcept = default;
    Weights& operator=(Weights&&) noexcept = default;

    const ModelConfig& config() const { return config_; }
    const ParamLayout& layout() const { return *layout_; }
    backend::Backend& backend() const { return *buffer_.backend(); }
    const PlacedLayout& placed() const { return placed_; }
    const ModelWeights& views() const { return views_; }  // per-layer views for forward code
    size_t bytes() const { return buffer_.bytes(); }

    DType dtype_of(std::string_view name) const { return placed_.dtype(name); }
    Tensor tensor(std::string_view name) const { return placed_.view(name); }
    // True when every tensor has one dtype; then flat() is the whole buffer as [n_params].
    bool is_uniform() const;
    DType dtype() const;  // the one dtype of uniform weights (asserted)
    Tensor flat() const;

    // Tensor `name` from host memory holding its values in src_dtype, converted to its storage
    // dtype. Throws Error naming the tensor when `n` is not its element count.
    void set(std::string_view name, const void* src, DType src_dtype, int64_t n);
    // Tensor `name` converted to dst_dtype into host memory of its element count.
    void get(std::string_view name, void* dst, DType dst_dtype) const;
    std::vector<float> get_f32(std::string_view name) const;

    // The family's initialisation, drawn on the host from core/rng (tensor i of the layout uses
    // RngKey{seed, Init, rank 0, step i}), so every backend and dtype gets the same values.
    void init(uint64_t seed);

    // A copy on `backend` with each tensor in dtype_of(entry), converted from this one.
    Weights converted(backend::Backend& backend, const DTypeRule& dtype_of) const;

private:
    ModelConfig config_;
    std::unique_ptr<ParamLayout> layout_;  // on the heap: placed_ points at it across moves
    backend::Buffer buffer_;
    PlacedLayout placed_;
    ModelWeights views_;
};

// The storage dtype rule of `--type`/`--quant`: matrices (products and embeddings) in `dtype`,
// norms and biases in f32 as llama.cpp keeps them; a block dtype falls back to f16 for a tensor
// whose rows are not whole blocks.
Weights::DTypeRule storage_dtype_rule(DType dtype);

}  // namespace tandem::model

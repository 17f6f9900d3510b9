// The parameter table of a model: every tensor's Hugging Face name, shape, offset in the flat
// buffers and role. One flat buffer per role (weights, gradients, AdamW m and v) shares this
// table, so an all-reduce, an optimizer step or a checksum works on one span. Family files
// (gpt2.cpp, llama.cpp) build the table; the per-layer views of it live in weight_views.h.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "core/tensor.h"
#include "model/config.h"

namespace tandem::model {

// Matrix weights of products get weight decay; norms, biases and embeddings do not.
enum class ParamRole : uint8_t { Matrix, Norm, Bias, Embedding };

// How init() fills a tensor: N(0, std^2) drawn from core/rng, zeros, or ones.
enum class ParamInit : uint8_t { Normal, Zeros, Ones };

struct ParamEntry {
    std::string name;  // Hugging Face name, e.g. "model.layers.0.self_attn.q_proj.weight"
    Shape shape;
    int64_t offset = 0;  // in elements from the start of the flat buffer
    ParamRole role = ParamRole::Matrix;
    ParamInit init = ParamInit::Normal;
    float init_std = 0.0f;  // for ParamInit::Normal

    int64_t numel() const { return shape.numel(); }
    bool is_decayed() const { return role == ParamRole::Matrix; }
};

class PlacedLayout;

// Offsets are packed with no padding: tensors that one product reads as a single matrix
// (q/k/v, gate/up) must be adjacent, and every kernel accepts any element alignment. The flat
// buffer itself is 64-byte aligned by the backend's allocator.
class ParamLayout {
public:
    // Appends a tensor after the last one.
    void add(std::string name, Shape shape, ParamRole role, ParamInit init, float init_std = 0);

    const std::vector<ParamEntry>& entries() const { return entries_; }
    int64_t n_params() const { return n_params_; }
    const ParamEntry* find(std::string_view name) const;
    // Like find, but throws Error naming the tensor when the model has no such parameter.
    const ParamEntry& get(std::string_view name) const;

    // The view of one tensor inside a flat buffer laid out by this table.
    Tensor view(Tensor flat, std::string_view name) const;
    // Tensors that are adjacent in the flat buffer, all [rows_i, cols], seen as one
    // [sum rows_i, cols] matrix (the QKV and gate/up products).
    Tensor stacked_view(Tensor flat, std::initializer_list<std::string_view> names) const;
    int64_t index_of(std::string_view name) const;  // -1 when absent

private:
    std::vector<ParamEntry> entries_;
    int64_t n_params_ = 0;
};

// A layout laid into one buffer, each tensor in its own storage dtype, packed in layout order
// with no padding, so tensors adjacent in the layout stay one matrix when they share a dtype.
// Training's flat buffers are the uniform case; model::Weights may mix dtypes (f32 norms beside
// Q8_0 matrices). A placement computed with a null base gives the bytes to allocate.
class PlacedLayout {
public:
    PlacedLayout() = default;
    // Every tensor in flat's dtype, at its element offset: the view of a training buffer.
    static PlacedLayout uniform(const ParamLayout& layout, Tensor flat);
    // Each tensor in dtype_of(entry), packed from `base` (may be null to size a buffer first).
    static PlacedLayout packed(const ParamLayout& layout,
                               const std::function<DType(const ParamEntry&)>& dtype_of,
                               void* base, Device device);

    const ParamLayout& layout() const { return *layout_; }
    size_t bytes() const { return bytes_; }
    DType dtype(size_t index) const { return dtypes_[index]; }
    DType dtype(std::string_view name) const;
    Tensor view(std::string_view name) const;
    Tensor view(size_t index) const;
    // Adjacent tensors of one dtype, all [rows_i, cols], as one [sum rows_i, cols] matrix.
    Tensor stacked_view(std::initializer_list<std::string_view> names) const;

private:
    const ParamLayout* layout_ = nullptr;
    char* base_ = nullptr;
    Device device_ = Device::Host;
    std::vector<DType> dtypes_;    // per entry
    std::vector<size_t> offsets_;  // per entry, bytes from base_
    size_t bytes_ = 0;
};

// The layout of a validated config (dispatches to the family).
ParamLayout make_layout(const ModelConfig& config);

}  // namespace tandem::model

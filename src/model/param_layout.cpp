// The generic parts of the parameter table and its placement in a buffer; the names themselves
// come from the family files.
#include "model/param_layout.h"

#include "model/families.h"

namespace tandem::model {

void ParamLayout::add(std::string name, Shape shape, ParamRole role, ParamInit init,
                      float init_std) {
    TANDEM_ASSERT(find(name) == nullptr, name);
    entries_.push_back({std::move(name), shape, n_params_, role, init, init_std});
    n_params_ += shape.numel();
}

int64_t ParamLayout::index_of(std::string_view name) const {
    for (size_t i = 0; i < entries_.size(); ++i)
        if (entries_[i].name == name) return static_cast<int64_t>(i);
    return -1;
}

const ParamEntry* ParamLayout::find(std::string_view name) const {
    const int64_t i = index_of(name);
    return i < 0 ? nullptr : &entries_[i];
}

const ParamEntry& ParamLayout::get(std::string_view name) const {
    const ParamEntry* e = find(name);
    if (!e) throw Error("the model has no parameter named '", name, "'");
    return *e;
}

Tensor ParamLayout::view(Tensor flat, std::string_view name) const {
    return PlacedLayout::uniform(*this, flat).view(name);
}

Tensor ParamLayout::stacked_view(Tensor flat, std::initializer_list<std::string_view> names) const {
    return PlacedLayout::uniform(*this, flat).stacked_view(names);
}

PlacedLayout PlacedLayout::uniform(const ParamLayout& layout, Tensor flat) {
    TANDEM_ASSERT(flat.numel() == layout.n_params(), flat.numel(), layout.n_params());
    PlacedLayout p;
    p.layout_ = &layout;
    p.base_ = static_cast<char*>(flat.data);
    p.device_ = flat.device;
    p.dtypes_.assign(layout.entries().size(), flat.dtype);
    for (const ParamEntry& e : layout.entries()) p.offsets_.push_back(dtype_bytes(flat.dtype, e.offset));
    p.bytes_ = flat.bytes();
    return p;
}

PlacedLayout PlacedLayout::packed(const ParamLayout& layout,
                                  const std::function<DType(const ParamEntry&)>& dtype_of,
                                  void* base, Device device) {
    PlacedLayout p;
    p.layout_ = &layout;
    p.base_ = static_cast<char*>(base);
    p.device_ = device;
    for (const ParamEntry& e : layout.entries()) {
        const DType dtype = dtype_of(e);
        // Blocks run along rows: a row that is not whole blocks cannot be stored blocked.
        TANDEM_ASSERT(e.shape[-1] % dtype_block_values(dtype) == 0, e.name, dtype_name(dtype));
        p.dtypes_.push_back(dtype);
        p.offsets_.push_back(p.bytes_);
        p.bytes_ += dtype_bytes(dtype, e.numel());
    }
    return p;
}

DType PlacedLayout::dtype(std::string_view name) const {
    layout_->get(name);  // throws, naming it, when absent
    return dtypes_[layout_->index_of(name)];
}

Tensor PlacedLayout::view(size_t index) const {
    const ParamEntry& e = layout_->entries()[index];
    return Tensor(base_ + offsets_[index], dtypes_[index], e.shape, device_);
}

Tensor PlacedLayout::view(std::string_view name) const {
    layout_->get(name);
    return view(static_cast<size_t>(layout_->index_of(name)));
}

Tensor PlacedLayout::stacked_view(std::initializer_list<std::string_view> names) const {
    const Tensor first = view(*names.begin());
    const bool is_vector = first.shape.ndim == 1;  // stacked biases: [sum n_i]
    const int64_t cols = is_vector ? 1 : first.shape[-1];
    int64_t rows = 0;
    for (std::string_view name : names) {
        const Tensor t = view(name);
        // Adjacency is what lets one product read the tensors as one matrix.
        TANDEM_ASSERT(t.dtype == first.dtype && t.shape.ndim == first.shape.ndim &&
                          t.shape.ndim <= 2 && t.cols() == (is_vector ? t.numel() : cols) &&
                          t.data == static_cast<char*>(first.data) +
                                        dtype_bytes(first.dtype, rows * cols),
                      name, rows, cols);
        rows += is_vector ? t.numel() : t.shape[0];
    }
    return is_vector ? Tensor(first.data, first.dtype, {rows}, device_)
                     : Tensor(first.data, first.dtype, {rows, cols}, device_);
}

ModelWeights bind_weights(const ModelConfig& config, const PlacedLayout& placed) {
    return config.family == Family::Gpt2 ? gpt2_weights(config, placed)
                                         : llama_weights(config, placed);
}

ParamLayout make_layout(const ModelConfig& config) {
    return config.family == Family::Gpt2 ? gpt2_layout(config) : llama_layout(config);
}

}  // namespace tandem::model

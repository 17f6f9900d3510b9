// The generic parts of the parameter table; the names themselves come from the family files.
#include "model/param_layout.h"

#include "model/families.h"

namespace tandem::model {

void ParamLayout::add(std::string name, Shape shape, ParamRole role, ParamInit init,
                      float init_std) {
    TANDEM_ASSERT(find(name) == nullptr, name);
    entries_.push_back({std::move(name), shape, n_params_, role, init, init_std});
    n_params_ += shape.numel();
}

const ParamEntry* ParamLayout::find(std::string_view name) const {
    for (const auto& e : entries_)
        if (e.name == name) return &e;
    return nullptr;
}

const ParamEntry& ParamLayout::get(std::string_view name) const {
    const ParamEntry* e = find(name);
    if (!e) throw Error("the model has no parameter named '", name, "'");
    return *e;
}

Tensor ParamLayout::view(Tensor flat, std::string_view name) const {
    const ParamEntry& e = get(name);
    TANDEM_ASSERT(flat.numel() == n_params_, flat.numel(), n_params_);
    return flat.slice(e.offset, e.numel()).view(e.shape);
}

Tensor ParamLayout::stacked_view(Tensor flat, std::initializer_list<std::string_view> names) const {
    const ParamEntry& first = get(*names.begin());
    const int64_t cols = first.shape[-1];
    int64_t rows = 0;
    for (std::string_view name : names) {
        const ParamEntry& e = get(name);
        // Adjacency is what lets one product read the tensors as one matrix.
        TANDEM_ASSERT(e.offset == first.offset + rows * cols && e.shape.ndim == 2 &&
                          e.shape[1] == cols,
                      name, e.offset, first.offset, rows, cols);
        rows += e.shape[0];
    }
    return flat.slice(first.offset, rows * cols).view({rows, cols});
}

ParamLayout make_layout(const ModelConfig& config) {
    return config.family == Family::Gpt2 ? gpt2_layout(config) : llama_layout(config);
}

}  // namespace tandem::model

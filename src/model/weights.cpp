// Placing a layout into one buffer, moving tensors in and out with conversion, and the family's
// initialisation.
#include "model/weights.h"

#include "backend/host_memory.h"
#include "core/quant.h"
#include "core/rng.h"
#include "model/families.h"

namespace tandem::model {

Weights::Weights(const ModelConfig& config, backend::Backend& backend, DType dtype)
    : Weights(config, backend, [dtype](const ParamEntry&) { return dtype; }) {}

Weights::Weights(const ModelConfig& config, backend::Backend& backend, const DTypeRule& dtype_of)
    : config_(config) {
    config_.validate();
    layout_ = std::make_unique<ParamLayout>(make_layout(config_));
    const size_t bytes = PlacedLayout::packed(*layout_, dtype_of, nullptr, backend.device()).bytes();
    buffer_ = backend::Buffer(backend, bytes);
    // Decoding streams every weight once a token: on huge pages, before the zeroing below
    // touches them (backend/host_memory.h).
    if (backend.device() == Device::Host) backend::prefer_huge_pages(buffer_.data(), bytes);
    placed_ = PlacedLayout::packed(*layout_, dtype_of, buffer_.data(), backend.device());
    views_ = bind_weights(config_, placed_);
    // Zero through an element view: block dtypes are zero as bytes too (scale 0).
    backend.fill_zero(Tensor(buffer_.data(), DType::F32, {static_cast<int64_t>(bytes / 4)},
                             backend.device()));
    if (bytes % 4) {
        const std::vector<char> zeros(bytes % 4, 0);
        backend.copy_to_device(static_cast<char*>(buffer_.data()) + bytes / 4 * 4, zeros.data(),
                               zeros.size());
    }
}

bool Weights::is_uniform() const {
    for (size_t i = 1; i < layout_->entries().size(); ++i)
        if (placed_.dtype(i) != placed_.dtype(size_t{0})) return false;
    return true;
}

DType Weights::dtype() const {
    TANDEM_ASSERT(is_uniform(), "weights of mixed dtypes have no single dtype");
    return placed_.dtype(size_t{0});
}

Tensor Weights::flat() const {
    return Tensor(buffer_.data(), dtype(), {layout_->n_params()}, backend().device());
}

void Weights::set(std::string_view name, const void* src, DType src_dtype, int64_t n) {
    const Tensor dst = placed_.view(name);
    if (n != dst.numel())
        throw Error("tensor ", name, " ", dst.shape.str(), " has ", dst.numel(),
                    " elements but ", n, " were given");
    if (backend().device() == Device::Host) {
        convert_values(dst.data, dst.dtype, src, src_dtype, n);
        return;
    }
    std::vector<char> staged(dst.bytes());
    convert_values(staged.data(), dst.dtype, src, src_dtype, n);
    backend().copy_to_device(dst.data, staged.data(), staged.size());
}

void Weights::get(std::string_view name, void* dst, DType dst_dtype) const {
    const Tensor src = placed_.view(name);
    if (backend().device() == Device::Host) {
        convert_values(dst, dst_dtype, src.data, src.dtype, src.numel());
        return;
    }
    std::vector<char> staged(src.bytes());
    backend().copy_to_host(staged.data(), src.data, staged.size());
    convert_values(dst, dst_dtype, staged.data(), src.dtype, src.numel());
}

std::vector<float> Weights::get_f32(std::string_view name) const {
    std::vector<float> out(placed_.view(name).numel());
    get(name, out.data(), DType::F32);
    return out;
}

void Weights::init(uint64_t seed) {
    std::vector<float> host;
    const auto& entries = layout_->entries();
    for (size_t i = 0; i < entries.size(); ++i) {
        const ParamEntry& e = entries[i];
        host.assign(e.numel(), e.init == ParamInit::Ones ? 1.0f : 0.0f);
        if (e.init == ParamInit::Normal) {
            const RngKey key{.seed = seed, .purpose = RngPurpose::Init, .rank = 0,
                             .step = static_cast<uint32_t>(i)};
            fill_normal(host.data(), e.numel(), key);
            for (float& x : host) x *= e.init_std;
        }
        set(e.name, host.data(), DType::F32, e.numel());
    }
}

Weights Weights::converted(backend::Backend& backend, const DTypeRule& dtype_of) const {
    Weights out(config_, backend, dtype_of);
    std::vector<char> host;
    for (const ParamEntry& e : layout_->entries()) {
        // Straight into the new dtype: a tensor that keeps its dtype is copied bit for bit.
        const DType dtype = out.dtype_of(e.name);
        host.resize(dtype_bytes(dtype, e.numel()));
        get(e.name, host.data(), dtype);
        out.set(e.name, host.data(), dtype, e.numel());
    }
    return out;
}

Weights::DTypeRule storage_dtype_rule(DType dtype) {
    return [dtype](const ParamEntry& e) {
        if (e.shape.ndim < 2) return DType::F32;
        if (e.shape[-1] % dtype_block_values(dtype) != 0) return DType::F16;
        return dtype;
    };
}

}  // namespace tandem::model

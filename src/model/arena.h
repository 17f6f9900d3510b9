// Carving tensors out of one device allocation with a bump pointer, each 64-byte aligned like the
// backend's allocations. A pass with a null base only measures: run it once to size the Buffer,
// then again over the Buffer's memory (training's activations, inference's scratch).
#pragma once

#include <cstddef>

#include "core/tensor.h"

namespace tandem::model {

class ArenaCarver {
public:
    ArenaCarver(void* base, Device device) : base_(static_cast<char*>(base)), device_(device) {}
    Tensor take(DType dtype, Shape shape) {
        offset_ = (offset_ + 63) / 64 * 64;
        Tensor t(base_ ? base_ + offset_ : nullptr, dtype, shape, device_);
        offset_ += t.bytes();
        return t;
    }
    size_t bytes() const { return offset_; }

private:
    char* base_;
    Device device_;
    size_t offset_ = 0;
};

}  // namespace tandem::model

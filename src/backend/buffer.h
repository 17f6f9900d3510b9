// An owning allocation on a backend's device, freed with its owner. Arenas and flat parameter
// buffers are built on it.
#pragma once

#include <cstddef>
#include <utility>

#include "backend/backend.h"

namespace tandem::backend {

class Buffer {
public:
    Buffer() = default;
    Buffer(Backend& backend, size_t bytes)
        : backend_(&backend), data_(bytes ? backend.alloc(bytes) : nullptr), bytes_(bytes) {}
    ~Buffer() { release(); }
    Buffer(Buffer&& other) noexcept { *this = std::move(other); }
    Buffer& operator=(Buffer&& other) noexcept {
        if (this != &other) {
            release();
            backend_ = std::exchange(other.backend_, nullptr);
            data_ = std::exchange(other.data_, nullptr);
            bytes_ = std::exchange(other.bytes_, 0);
        }
        return *this;
    }
    Buffer(const Buffer&) = delete;
    Buffer& operator=(const Buffer&) = delete;

    void* data() const { return data_; }
    size_t bytes() const { return bytes_; }
    Backend* backend() const { return backend_; }
    // A view of the whole buffer (or of `shape` elements from its start).
    Tensor tensor(DType dtype, Shape shape) const {
        TANDEM_ASSERT(dtype_bytes(dtype, shape.numel()) <= bytes_,
                      shape.str(), bytes_);
        return Tensor(data_, dtype, shape, backend_ ? backend_->device() : Device::Host);
    }

private:
    void release() {
        if (data_) backend_->free(data_);
        data_ = nullptr;
    }
    Backend* backend_ = nullptr;
    void* data_ = nullptr;
    size_t bytes_ = 0;
};

}  // namespace tandem::backend

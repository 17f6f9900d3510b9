// Tensor views: a pointer, an element type, a shape of up to four dimensions and the device the
// memory lives on. A view owns nothing; arenas and flat parameter buffers own the memory.
#pragma once

#include <array>
#include <cstdint>
#include <initializer_list>
#include <string>

#include "core/dtype.h"
#include "core/error.h"

namespace tandem {

enum class Device : uint8_t { Host, Cuda };

std::string_view device_name(Device device);

struct Shape {
    static constexpr int kMaxDims = 4;
    std::array<int64_t, kMaxDims> dims{};
    int ndim = 0;

    Shape() = default;
    Shape(std::initializer_list<int64_t> sizes);

    int64_t operator[](int i) const { return dims[i < 0 ? ndim + i : i]; }
    int64_t numel() const;
    bool operator==(const Shape& other) const;
    std::string str() const;  // "[2, 3, 4]"
};

struct Tensor {
    void* data = nullptr;
    DType dtype = DType::F32;
    Shape shape;
    Device device = Device::Host;

    Tensor() = default;
    Tensor(void* data, DType dtype, Shape shape, Device device = Device::Host)
        : data(data), dtype(dtype), shape(shape), device(device) {}

    bool empty() const { return data == nullptr; }
    int64_t numel() const { return shape.numel(); }
    size_t bytes() const { return dtype_bytes(dtype, numel()); }
    int64_t size(int i) const { return shape[i]; }
    int ndim() const { return shape.ndim; }
    // Rows of the last dimension: a [B, T, C] tensor has B*T rows of C.
    int64_t rows() const { return shape.ndim == 0 ? 1 : numel() / shape[-1]; }
    int64_t cols() const { return shape.ndim == 0 ? 1 : shape[-1]; }

    template <typename T>
    T* as() const { return static_cast<T*>(data); }

    // The same memory seen with another shape of the same element count.
    Tensor view(Shape new_shape) const;
    // Elements [begin, begin + count) of the flattened tensor, as a 1-D view (whole blocks for a
    // block dtype).
    Tensor slice(int64_t begin, int64_t count) const;
    std::string str() const;  // "f32[2, 3, 4]"
};

}  // namespace tandem

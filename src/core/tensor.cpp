// Shape arithmetic and printing for tensor views.
#include "core/tensor.h"

#include <sstream>

namespace tandem {

std::string_view device_name(Device device) { return device == Device::Host ? "cpu" : "cuda"; }

Shape::Shape(std::initializer_list<int64_t> sizes) {
    TANDEM_ASSERT(sizes.size() <= static_cast<size_t>(kMaxDims), sizes.size());
    for (int64_t s : sizes) dims[ndim++] = s;
}

int64_t Shape::numel() const {
    int64_t n = 1;
    for (int i = 0; i < ndim; ++i) n *= dims[i];
    return n;
}

bool Shape::operator==(const Shape& other) const {
    if (ndim != other.ndim) return false;
    for (int i = 0; i < ndim; ++i)
        if (dims[i] != other.dims[i]) return false;
    return true;
}

std::string Shape::str() const {
    std::ostringstream out;
    out << '[';
    for (int i = 0; i < ndim; ++i) out << (i ? ", " : "") << dims[i];
    out << ']';
    return out.str();
}

Tensor Tensor::view(Shape new_shape) const {
    TANDEM_ASSERT(new_shape.numel() == numel(), new_shape.str(), shape.str());
    return Tensor(data, dtype, new_shape, device);
}

Tensor Tensor::slice(int64_t begin, int64_t count) const {
    TANDEM_ASSERT(begin >= 0 && count >= 0 && begin + count <= numel(), begin, count, numel());
    auto* base = static_cast<char*>(data) + dtype_bytes(dtype, begin);
    return Tensor(base, dtype, Shape{count}, device);
}

std::string Tensor::str() const { return std::string(dtype_name(dtype)) + shape.str(); }

}  // namespace tandem

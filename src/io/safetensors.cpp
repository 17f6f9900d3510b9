// safetensors reader and writer. The format:
//   bytes [0, 8)        N, the header length, unsigned 64-bit little-endian
//   bytes [8, 8 + N)    a JSON object, UTF-8, possibly padded with trailing spaces:
//                         "__metadata__": {string: string}            (optional)
//                         "<name>": {"dtype": "F32" | "F64" | "BF16" | "F16" | "I32" | ...,
//                                    "shape": [d0, d1, ...],
//                                    "data_offsets": [begin, end]}    (relative to byte 8 + N)
//   bytes [8 + N, end)  the tensors' little-endian data, each [begin, end) of this area
#include "io/safetensors.h"

#include <algorithm>
#include <cstring>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "io/atomic_file.h"

namespace tandem::io {

namespace {

// The dtypes tandem reads; safetensors knows more (I8, U8, I64, F8_*), which are rejected by
// name.
bool dtype_from_safetensors(std::string_view name, DType& out) {
    if (name == "F32") out = DType::F32;
    else if (name == "F64") out = DType::F64;
    else if (name == "BF16") out = DType::BF16;
    else if (name == "F16") out = DType::F16;
    else if (name == "I32") out = DType::I32;
    else return false;
    return true;
}

// A header larger than this is surely corrupt (real headers of 100k-tensor models are ~10 MB).
constexpr uint64_t kMaxHeaderBytes = 100ull << 20;

}  // namespace

int64_t SafetensorsTensor::numel() const {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    return n;
}

std::string_view safetensors_dtype_name(DType dtype) {
    switch (dtype) {
        case DType::F32: return "F32";
        case DType::F64: return "F64";
        case DType::BF16: return "BF16";
        case DType::F16: return "F16";
        case DType::I32: return "I32";
        case DType::Q8_0:
        case DType::Q4_0: break;  // GGML block formats have no safetensors dtype
    }
    TANDEM_ASSERT(false, "no safetensors dtype for", dtype_name(dtype));
}

SafetensorsReader::SafetensorsReader(const std::string& path) : file_(path) {
    const size_t size = file_.size();
    if (size < 8) throw Error(path, ": not a safetensors file (", size, " bytes, shorter than its 8-byte header length)");
    uint64_t header_bytes = 0;
    std::memcpy(&header_bytes, file_.data(), 8);  // little-endian hosts only (x86-64, arm64)
    if (header_bytes > kMaxHeaderBytes || header_bytes > size - 8)
        throw Error(path, ": header length ", header_bytes, " runs past the end of the ", size,
                    "-byte file (truncated or not safetensors)");
    const char* header_begin = reinterpret_cast<const char*>(file_.data() + 8);
    nlohmann::json header;
    try {
        header = nlohmann::json::parse(header_begin, header_begin + header_bytes);
    } catch (const nlohmann::json::exception& e) {
        throw Error(path, ": header is not valid JSON: ", e.what());
    }
    if (!header.is_object()) throw Error(path, ": header is not a JSON object");

    const unsigned char* data_area = file_.data() + 8 + header_bytes;
    const uint64_t data_bytes = size - 8 - header_bytes;
    for (auto it = header.begin(); it != header.end(); ++it) {
        const std::string& name = it.key();
        const nlohmann::json& entry = it.value();
        if (name == "__metadata__") {
            if (!entry.is_object()) throw Error(path, ": __metadata__ is not an object");
            for (auto m = entry.begin(); m != entry.end(); ++m) {
                if (!m.value().is_string())
                    throw Error(path, ": __metadata__ value of '", m.key(), "' is not a string");
                metadata_[m.key()] = m.value().get<std::string>();
            }
            continue;
        }
        const auto fail = [&](const auto&... what) {
            return Error(path, ": tensor '", name, "': ", what...);
        };
        if (!entry.is_object() || !entry.contains("dtype") || !entry.contains("shape") ||
            !entry.contains("data_offsets"))
            throw fail("entry needs dtype, shape and data_offsets");
        SafetensorsTensor t;
        t.name = name;
        if (!entry["dtype"].is_string()) throw fail("dtype is not a string");
        const std::string dtype_name = entry["dtype"].get<std::string>();
        if (!dtype_from_safetensors(dtype_name, t.dtype))
            throw fail("dtype ", dtype_name, " is not supported (tandem reads F32, F64, BF16, F16, I32)");
        if (!entry["shape"].is_array()) throw fail("shape is not an array");
        for (const auto& d : entry["shape"]) {
            if (!d.is_number_integer() || d.get<int64_t>() < 0) throw fail("shape has a non-integer or negative dimension");
            t.shape.push_back(d.get<int64_t>());
        }
        const auto& offsets = entry["data_offsets"];
        if (!offsets.is_array() || offsets.size() != 2 || !offsets[0].is_number_unsigned() ||
            !offsets[1].is_number_unsigned())
            throw fail("data_offsets is not a pair of non-negative integers");
        const uint64_t begin = offsets[0].get<uint64_t>(), end = offsets[1].get<uint64_t>();
        if (begin > end || end > data_bytes)
            throw fail("data [", begin, ", ", end, ") runs past the end of the data (", data_bytes,
                       " bytes): the file is truncated or corrupt");
        const uint64_t want = static_cast<uint64_t>(t.numel()) * dtype_size(t.dtype);
        if (end - begin != want)
            throw fail("holds ", end - begin, " bytes but shape and dtype need ", want);
        t.data = data_area + begin;
        t.bytes = end - begin;
        tensors_.push_back(std::move(t));
    }
    // File order, and no two tensors sharing bytes.
    std::sort(tensors_.begin(), tensors_.end(),
              [](const auto& a, const auto& b) { return a.data < b.data; });
    for (size_t i = 1; i < tensors_.size(); ++i) {
        const auto* prev_end = static_cast<const unsigned char*>(tensors_[i - 1].data) + tensors_[i - 1].bytes;
        if (static_cast<const unsigned char*>(tensors_[i].data) < prev_end)
            throw Error(path, ": tensors '", tensors_[i - 1].name, "' and '", tensors_[i].name, "' overlap");
    }
}

const SafetensorsTensor* SafetensorsReader::find(std::string_view name) const {
    for (const auto& t : tensors_)
        if (t.name == name) return &t;
    return nullptr;
}

const SafetensorsTensor& SafetensorsReader::get(std::string_view name) const {
    const SafetensorsTensor* t = find(name);
    if (!t) throw Error(path(), ": has no tensor '", name, "'");
    return *t;
}

namespace {
std::string shape_text(const std::vector<int64_t>& shape) {
    std::string out = "[";
    for (size_t i = 0; i < shape.size(); ++i) out += (i ? ", " : "") + std::to_string(shape[i]);
    return out + "]";
}
}  // namespace

const SafetensorsTensor& SafetensorsReader::get(std::string_view name, DType dtype,
                                                const std::vector<int64_t>& shape) const {
    const SafetensorsTensor& t = get(name);
    if (t.dtype != dtype || t.shape != shape)
        throw Error(path(), ": tensor '", name, "' is ", dtype_name(t.dtype), shape_text(t.shape),
                    " but ", dtype_name(dtype), shape_text(shape), " was expected");
    return t;
}

uint64_t save_safetensors(const std::string& path, std::span<const SafetensorsTensor> tensors,
                          const std::map<std::string, std::string>& metadata, WriteMode mode) {
    // nlohmann::ordered_json keeps the tensors in the order given, which is also the data order.
    nlohmann::ordered_json header;
    if (!metadata.empty()) header["__metadata__"] = metadata;
    uint64_t offset = 0;
    for (const auto& t : tensors) {
        const uint64_t bytes = static_cast<uint64_t>(t.numel()) * dtype_size(t.dtype);
        TANDEM_ASSERT(bytes == t.bytes || t.bytes == 0, t.name, bytes, t.bytes);
        header[t.name] = {{"dtype", safetensors_dtype_name(t.dtype)},
                          {"shape", t.shape},
                          {"data_offsets", {offset, offset + bytes}}};
        offset += bytes;
    }
    std::string text = header.dump();
    text.append((8 - text.size() % 8) % 8, ' ');  // align the data area to 8 bytes
    const uint64_t header_bytes = text.size();

    AtomicFile file(path, mode);
    file.write(&header_bytes, 8);
    file.write(text);
    for (const auto& t : tensors) file.write(t.data, static_cast<size_t>(t.numel()) * dtype_size(t.dtype));
    file.commit();
    return *file.checksum();
}

}  // namespace tandem::io

// GGUF files (llama.cpp's model format): a validating reader over a memory map (versions 2 and
// 3), typed metadata, and an atomic writer of version 3 that llama.cpp loads. Only the format
// lives here; what the keys mean for a model is infer/gguf_model.h's job, the tokenizer keys are
// io/gguf_tokenizer.h's.
#pragma once

#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <variant>
#include <vector>

#include "core/dtype.h"
#include "io/atomic_file.h"
#include "io/mapped_file.h"

namespace tandem::io {

// GGUF's value types, numbered as in the file.
// clang-format off
enum class GgufType : uint32_t {
    U8 = 0, I8 = 1, U16 = 2, I16 = 3, U32 = 4, I32 = 5, F32 = 6, Bool = 7,
    String = 8, Array = 9, U64 = 10, I64 = 11, F64 = 12,
};
// clang-format on
std::string_view gguf_type_name(GgufType type);  // "u8", ..., "string", "array"
// The bytes one element of `type` takes in the file; for a string or an array, the least it can
// take (its length; its element type and count), which bounds a count before anything is reserved.
size_t gguf_element_bytes(GgufType type);

// An array of one element type. Numbers and bools are kept as their little-endian bytes (so an
// array costs no more memory than the file), strings and nested arrays as objects.
struct GgufArray {
    GgufType type = GgufType::U8;
    std::vector<uint8_t> raw;          // numeric and bool elements
    std::vector<std::string> strings;  // type == String
    std::vector<GgufArray> arrays;     // type == Array

    size_t size() const;
    // Element i of a numeric or bool array, widened: any integer type (bool as 0/1) to int64
    // (a u64 above INT64_MAX is asserted away by the getters that call this), f32/f64 to double.
    int64_t int_at(size_t i) const;
    double float_at(size_t i) const;

    template <typename T>
    static GgufArray of(std::span<const T> values);  // T: one of the numeric types or bool
    static GgufArray of_strings(std::vector<std::string> values);
    static GgufArray of_arrays(std::vector<GgufArray> values);  // all of one element type
};

// One metadata value; the variant's index is the GgufType number.
using GgufValue = std::variant<uint8_t, int8_t, uint16_t, int16_t, uint32_t, int32_t, float, bool,
                               std::string, GgufArray, uint64_t, int64_t, double>;
inline GgufType gguf_type_of(const GgufValue& v) {
    return GgufType(v.index());
}

// Key -> value, in insertion order (the order a writer puts them in the file). Getters throw
// Error naming the source (a path, or "metadata"), the key and the types got and expected.
class GgufMetadata {
   public:
    explicit GgufMetadata(std::string source = "metadata") : source_(std::move(source)) {}

    void set(std::string key, GgufValue value);  // replaces an existing key in place
    bool contains(std::string_view key) const { return find(key) != nullptr; }
    const GgufValue* find(std::string_view key) const;
    const std::vector<std::pair<std::string, GgufValue>>& entries() const { return entries_; }
    size_t size() const { return entries_.size(); }
    const std::string& source() const { return source_; }

    const GgufValue& get(std::string_view key) const;  // throws when absent
    // Any integer type, checked to fit int64; f32 or f64; bool; string.
    int64_t get_int(std::string_view key) const;
    double get_float(std::string_view key) const;
    bool get_bool(std::string_view key) const;
    const std::string& get_string(std::string_view key) const;
    // An array, whose elements must be of `element` (Array: any nested arrays).
    const GgufArray& get_array(std::string_view key, GgufType element) const;
    // An array of strings; an array of any integer type, widened.
    const std::vector<std::string>& get_strings(std::string_view key) const;
    std::vector<int64_t> get_ints(std::string_view key) const;

    int64_t get_int_or(std::string_view key, int64_t fallback) const;
    double get_float_or(std::string_view key, double fallback) const;
    bool get_bool_or(std::string_view key, bool fallback) const;
    std::string get_string_or(std::string_view key, std::string fallback) const;

   private:
    [[noreturn]] void wrong_type(std::string_view key, const GgufValue& got,
                                 std::string_view expected) const;

    std::string source_;
    std::vector<std::pair<std::string, GgufValue>> entries_;
    std::unordered_map<std::string, size_t> index_;
};

// One tensor. Shapes are in tandem's (and Hugging Face's) row-major order, outermost first: the
// reverse of GGML's ne[], so an HF [out, in] matrix is [out, in] here although the file says
// ne = {in, out}. The last dimension is the contiguous one; for Q8_0/Q4_0 it holds whole blocks.
struct GgufTensor {
    std::string name;
    DType dtype = DType::F32;    // F32, F16, BF16, Q8_0 or Q4_0
    std::vector<int64_t> shape;  // at most 4 dimensions
    const void* data = nullptr;  // into the mapped file (reader) or caller memory (writer)
    size_t bytes = 0;            // dtype_bytes(dtype, numel())
    uint64_t offset = 0;         // reader: from the start of the data section

    int64_t numel() const;
};

// GGML's type number for a tandem dtype (F32 0, F16 1, Q4_0 2, Q8_0 8, BF16 30); asserts on
// F64 and I32, which GGUF models do not use.
uint32_t ggml_type_of(DType dtype);
// GGML's name for a type number ("Q4_K"), or "unknown" outside GGML's table.
std::string_view ggml_type_name(uint32_t type);

class GgufReader {
   public:
    // Maps the file and validates all of it (see the format at the top of gguf.cpp): any
    // malformed, truncated or unsupported part throws Error naming the file and the field.
    explicit GgufReader(const std::string& path);
    // The same over bytes the caller keeps alive for the reader's lifetime (fuzzing, tests);
    // `name` stands for the path in messages.
    GgufReader(const void* data, size_t size, std::string name);

    GgufReader(GgufReader&&) noexcept = default;
    GgufReader& operator=(GgufReader&&) noexcept = default;

    const std::string& path() const { return name_; }
    uint32_t version() const { return version_; }
    uint64_t alignment() const { return alignment_; }
    uint64_t data_offset() const { return data_offset_; }  // file offset of the data section
    const GgufMetadata& metadata() const { return metadata_; }
    const std::vector<GgufTensor>& tensors() const { return tensors_; }  // in the file's order
    const GgufTensor* find(std::string_view name) const;
    // Like find, but throws Error naming the file and the tensor when it is absent.
    const GgufTensor& get(std::string_view name) const;
    // get() that also checks the shape (any of the five dtypes), naming both shapes.
    const GgufTensor& get(std::string_view name, const std::vector<int64_t>& shape) const;

   private:
    void parse(const unsigned char* data, size_t size);

    std::string name_;
    MappedFile file_;  // empty when reading caller memory
    uint32_t version_ = 0;
    uint64_t alignment_ = 32;
    uint64_t data_offset_ = 0;
    GgufMetadata metadata_;
    std::vector<GgufTensor> tensors_;
    std::unordered_map<std::string, size_t> by_name_;
};

// Writes a GGUF v3 file: the metadata in its order, the tensors' infos, then their data in the
// given order, each aligned to general.alignment (a u32 power of two when present in
// `metadata`, else 32) as llama.cpp lays them out. Names must be shorter than 64 bytes (GGML's
// limit), Q8_0/Q4_0 last dimensions whole blocks, at most 4 dimensions (Error otherwise).
// Nested arrays are written as given, but llama.cpp's reader refuses them (it reads arrays of
// numbers, bools and strings only). Written under a temporary name renamed into place; returns
// the file's xxHash3.
uint64_t save_gguf(const std::string& path, const GgufMetadata& metadata,
                   std::span<const GgufTensor> tensors, WriteMode mode = WriteMode::Buffered);

}  // namespace tandem::io

// ---- templates ----
namespace tandem::io {

template <typename T>
constexpr GgufType gguf_type_for() {
    if constexpr (std::is_same_v<T, uint8_t>)
        return GgufType::U8;
    else if constexpr (std::is_same_v<T, int8_t>)
        return GgufType::I8;
    else if constexpr (std::is_same_v<T, uint16_t>)
        return GgufType::U16;
    else if constexpr (std::is_same_v<T, int16_t>)
        return GgufType::I16;
    else if constexpr (std::is_same_v<T, uint32_t>)
        return GgufType::U32;
    else if constexpr (std::is_same_v<T, int32_t>)
        return GgufType::I32;
    else if constexpr (std::is_same_v<T, float>)
        return GgufType::F32;
    else if constexpr (std::is_same_v<T, bool>)
        return GgufType::Bool;
    else if constexpr (std::is_same_v<T, uint64_t>)
        return GgufType::U64;
    else if constexpr (std::is_same_v<T, int64_t>)
        return GgufType::I64;
    else {
        static_assert(std::is_same_v<T, double>, "GGUF arrays hold numbers, bools or strings");
        return GgufType::F64;
    }
}

template <typename T>
GgufArray GgufArray::of(std::span<const T> values) {
    GgufArray a;
    a.type = gguf_type_for<T>();
    a.raw.resize(values.size() * sizeof(T));
    for (size_t i = 0; i < values.size(); ++i) {
        const T v = values[i];  // a bool is one byte, 0 or 1, as GGUF stores it
        std::memcpy(a.raw.data() + i * sizeof(T), &v, sizeof(T));
    }
    return a;
}

}  // namespace tandem::io

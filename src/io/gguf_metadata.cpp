// GGUF metadata values: type names, arrays and the key -> value table with its typed getters.
// Reading and writing them in the file is gguf.cpp's job.
#include <limits>

#include "core/error.h"
#include "io/gguf.h"

namespace tandem::io {

namespace {

bool is_integer(GgufType t) {
    return t == GgufType::U8 || t == GgufType::I8 || t == GgufType::U16 || t == GgufType::I16 ||
           t == GgufType::U32 || t == GgufType::I32 || t == GgufType::U64 || t == GgufType::I64;
}

}  // namespace

size_t gguf_element_bytes(GgufType type) {
    switch (type) {
        case GgufType::U8:
        case GgufType::I8:
        case GgufType::Bool:
            return 1;
        case GgufType::U16:
        case GgufType::I16:
            return 2;
        case GgufType::U32:
        case GgufType::I32:
        case GgufType::F32:
            return 4;
        case GgufType::U64:
        case GgufType::I64:
        case GgufType::F64:
            return 8;
        case GgufType::String:
            return 8;  // its length
        case GgufType::Array:
            return 12;  // element type and count
    }
    return 1;
}

std::string_view gguf_type_name(GgufType type) {
    switch (type) {
        case GgufType::U8:
            return "u8";
        case GgufType::I8:
            return "i8";
        case GgufType::U16:
            return "u16";
        case GgufType::I16:
            return "i16";
        case GgufType::U32:
            return "u32";
        case GgufType::I32:
            return "i32";
        case GgufType::F32:
            return "f32";
        case GgufType::Bool:
            return "bool";
        case GgufType::String:
            return "string";
        case GgufType::Array:
            return "array";
        case GgufType::U64:
            return "u64";
        case GgufType::I64:
            return "i64";
        case GgufType::F64:
            return "f64";
    }
    return "unknown";
}

size_t GgufArray::size() const {
    if (type == GgufType::String) return strings.size();
    if (type == GgufType::Array) return arrays.size();
    return raw.size() / gguf_element_bytes(type);
}

int64_t GgufArray::int_at(size_t i) const {
    const unsigned char* p = raw.data() + i * gguf_element_bytes(type);
    auto get = [p]<typename T>(T) {
        T v;
        std::memcpy(&v, p, sizeof(T));
        return static_cast<int64_t>(v);
    };
    switch (type) {
        case GgufType::U8:
            return get(uint8_t{});
        case GgufType::I8:
            return get(int8_t{});
        case GgufType::U16:
            return get(uint16_t{});
        case GgufType::I16:
            return get(int16_t{});
        case GgufType::U32:
            return get(uint32_t{});
        case GgufType::I32:
            return get(int32_t{});
        case GgufType::U64:
            return get(uint64_t{});
        case GgufType::I64:
            return get(int64_t{});
        case GgufType::Bool:
            return p[0];
        default:
            break;
    }
    TANDEM_ASSERT(false, "int_at on an array of", gguf_type_name(type));
}

double GgufArray::float_at(size_t i) const {
    const unsigned char* p = raw.data() + i * gguf_element_bytes(type);
    if (type == GgufType::F32) {
        float v;
        std::memcpy(&v, p, 4);
        return v;
    }
    if (type == GgufType::F64) {
        double v;
        std::memcpy(&v, p, 8);
        return v;
    }
    return static_cast<double>(int_at(i));
}

GgufArray GgufArray::of_strings(std::vector<std::string> values) {
    GgufArray a;
    a.type = GgufType::String;
    a.strings = std::move(values);
    return a;
}

GgufArray GgufArray::of_arrays(std::vector<GgufArray> values) {
    GgufArray a;
    a.type = GgufType::Array;
    a.arrays = std::move(values);
    return a;
}

// ---- metadata ----

void GgufMetadata::set(std::string key, GgufValue value) {
    if (auto it = index_.find(key); it != index_.end()) {
        entries_[it->second].second = std::move(value);
        return;
    }
    index_.emplace(key, entries_.size());
    entries_.emplace_back(std::move(key), std::move(value));
}

const GgufValue* GgufMetadata::find(std::string_view key) const {
    auto it = index_.find(std::string(key));
    return it == index_.end() ? nullptr : &entries_[it->second].second;
}

const GgufValue& GgufMetadata::get(std::string_view key) const {
    const GgufValue* v = find(key);
    if (!v) throw Error(source_, ": metadata has no key '", key, "'");
    return *v;
}

void GgufMetadata::wrong_type(std::string_view key, const GgufValue& got,
                              std::string_view expected) const {
    std::string got_name(gguf_type_name(gguf_type_of(got)));
    if (const auto* a = std::get_if<GgufArray>(&got))
        got_name += " of " + std::string(gguf_type_name(a->type));
    throw Error(source_, ": metadata key '", key, "' is of type ", got_name, " but ", expected,
                " was expected");
}

int64_t GgufMetadata::get_int(std::string_view key) const {
    const GgufValue& v = get(key);
    if (const auto* u = std::get_if<uint64_t>(&v)) {
        if (*u > uint64_t(std::numeric_limits<int64_t>::max()))
            throw Error(source_, ": metadata key '", key, "' is ", *u, ", too large");
        return int64_t(*u);
    }
    if (!is_integer(gguf_type_of(v))) wrong_type(key, v, "an integer");
    return std::visit(
        [](const auto& x) -> int64_t {
            using T = std::decay_t<decltype(x)>;
            if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool>)
                return static_cast<int64_t>(x);
            else
                return 0;
        },
        v);
}

double GgufMetadata::get_float(std::string_view key) const {
    const GgufValue& v = get(key);
    if (const auto* f = std::get_if<float>(&v)) return *f;
    if (const auto* d = std::get_if<double>(&v)) return *d;
    wrong_type(key, v, "f32 or f64");
}

bool GgufMetadata::get_bool(std::string_view key) const {
    const GgufValue& v = get(key);
    if (const auto* b = std::get_if<bool>(&v)) return *b;
    wrong_type(key, v, "bool");
}

const std::string& GgufMetadata::get_string(std::string_view key) const {
    const GgufValue& v = get(key);
    if (const auto* s = std::get_if<std::string>(&v)) return *s;
    wrong_type(key, v, "string");
}

const GgufArray& GgufMetadata::get_array(std::string_view key, GgufType element) const {
    const GgufValue& v = get(key);
    const auto* a = std::get_if<GgufArray>(&v);
    if (!a || a->type != element)
        wrong_type(key, v, "array of " + std::string(gguf_type_name(element)));
    return *a;
}

const std::vector<std::string>& GgufMetadata::get_strings(std::string_view key) const {
    return get_array(key, GgufType::String).strings;
}

std::vector<int64_t> GgufMetadata::get_ints(std::string_view key) const {
    const GgufValue& v = get(key);
    const auto* a = std::get_if<GgufArray>(&v);
    if (!a || !is_integer(a->type)) wrong_type(key, v, "array of an integer type");
    std::vector<int64_t> out(a->size());
    for (size_t i = 0; i < out.size(); ++i) {
        out[i] = a->int_at(i);
        if (a->type == GgufType::U64 && out[i] < 0)
            throw Error(source_, ": metadata key '", key, "'[", i, "] is too large for int64");
    }
    return out;
}

int64_t GgufMetadata::get_int_or(std::string_view key, int64_t fallback) const {
    return contains(key) ? get_int(key) : fallback;
}
double GgufMetadata::get_float_or(std::string_view key, double fallback) const {
    return contains(key) ? get_float(key) : fallback;
}
bool GgufMetadata::get_bool_or(std::string_view key, bool fallback) const {
    return contains(key) ? get_bool(key) : fallback;
}
std::string GgufMetadata::get_string_or(std::string_view key, std::string fallback) const {
    return contains(key) ? get_string(key) : fallback;
}

}  // namespace tandem::io

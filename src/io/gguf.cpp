// GGUF reader and writer; the metadata values and their getters are gguf_metadata.cpp's. The
// format (versions 2 and 3 are laid out alike; version 1 used 32-bit counts and is refused; all
// numbers little-endian):
//   u32 magic "GGUF" (bytes 47 47 55 46), u32 version, u64 n_tensors, u64 n_kv
//   n_kv times:      string key, u32 value type, value
//                      string = u64 length + that many UTF-8 bytes (no terminator)
//                      types: u8 0, i8 1, u16 2, i16 3, u32 4, i32 5, f32 6, bool 7 (one byte,
//                      0 or 1), string 8, array 9, u64 10, i64 11, f64 12
//                      array = u32 element type, u64 count, the elements (arrays may nest)
//   n_tensors times: string name, u32 n_dims (<= 4), i64 ne[n_dims], u32 ggml type,
//                    u64 offset (from the start of the data section, a multiple of alignment)
//                      ne[0] is the fastest-varying dimension: an HF [out, in] matrix has
//                      ne = {in, out}. Block types (Q8_0, Q4_0) need ne[0] % 32 == 0.
//   padding to general.alignment (a u32 power of two, 32 when absent), then the data section:
//   each tensor's bytes at its offset. llama.cpp writes them in info order, each padded to the
//   alignment; this reader only needs them inside the section, aligned and not overlapping.
// GGML types read: F32 0, F16 1, Q4_0 2, Q8_0 8, BF16 30; any other is refused by name.
#include "io/gguf.h"

#include <algorithm>
#include <bit>
#include <iterator>
#include <limits>

#include "core/error.h"

namespace tandem::io {

namespace {

constexpr uint32_t kMagic = 0x46554747;  // "GGUF" read as a little-endian u32
constexpr uint64_t kDefaultAlignment = 32;
constexpr size_t kMaxDims = 4;
constexpr size_t kMaxNameBytes = 64;  // GGML_MAX_NAME: llama.cpp refuses names of 64 or more
// Nested arrays deeper than this are surely hostile (llama.cpp itself reads no nesting at all);
// the bound keeps the recursion's stack small.
constexpr int kMaxArrayDepth = 8;

// GGML's type table, for naming what is refused. Gaps are types GGML has removed.
// clang-format off
constexpr std::string_view kGgmlTypeNames[] = {
    "F32",  "F16",   "Q4_0",  "Q4_1",    "Q4_2", "Q4_3",   "Q5_0",   "Q5_1",    "Q8_0",
    "Q8_1", "Q2_K",  "Q3_K",  "Q4_K",    "Q5_K", "Q6_K",   "Q8_K",   "IQ2_XXS", "IQ2_XS",
    "IQ3_XXS", "IQ1_S", "IQ4_NL", "IQ3_S", "IQ2_S", "IQ4_XS", "I8", "I16",  "I32",
    "I64",  "F64",   "IQ1_M", "BF16",    "Q4_0_4_4", "Q4_0_4_8", "Q4_0_8_8", "TQ1_0", "TQ2_0",
    "IQ4_NL_4_4", "IQ4_NL_4_8", "IQ4_NL_8_8", "MXFP4", "NVFP4", "Q1_0", "Q2_0"};
// clang-format on

bool dtype_from_ggml(uint32_t type, DType& out) {
    switch (type) {
        case 0:
            out = DType::F32;
            return true;
        case 1:
            out = DType::F16;
            return true;
        case 2:
            out = DType::Q4_0;
            return true;
        case 8:
            out = DType::Q8_0;
            return true;
        case 30:
            out = DType::BF16;
            return true;
        default:
            return false;
    }
}

bool is_valid_type(uint32_t t) {
    return t <= uint32_t(GgufType::F64);
}

std::string shape_text(const std::vector<int64_t>& shape) {
    std::string out = "[";
    for (size_t i = 0; i < shape.size(); ++i) out += (i ? ", " : "") + std::to_string(shape[i]);
    return out + "]";
}

// Reads the file front to back; every read is bounds-checked and names what it was reading.
class Cursor {
   public:
    Cursor(const unsigned char* data, size_t size, const std::string& name)
        : data_(data), size_(size), name_(name) {}

    size_t pos() const { return pos_; }
    uint64_t left() const { return size_ - pos_; }

    template <typename T>
    T read(const std::string& what) {
        T v;
        std::memcpy(&v, take(sizeof(T), what), sizeof(T));  // little-endian hosts only
        return v;
    }
    const unsigned char* take(uint64_t n, const std::string& what) {
        if (n > left())
            throw Error(name_, ": truncated: ", what, " needs ", n, " bytes at offset ", pos_,
                        " but the file ends at ", size_);
        const unsigned char* p = data_ + pos_;
        pos_ += n;
        return p;
    }
    std::string read_string(const std::string& what) {
        const uint64_t n = read<uint64_t>(what + " (its length)");
        if (n > left())
            throw Error(name_, ": ", what, " has length ", n, ", which runs past the end of the ",
                        size_, "-byte file (", left(), " bytes left)");
        const unsigned char* p = take(n, what);
        return std::string(reinterpret_cast<const char*>(p), n);
    }
    // A count of elements of at least `min_bytes` each: it must fit in what is left of the file
    // before anything is reserved for it.
    uint64_t read_count(const std::string& what, uint64_t min_bytes) {
        const uint64_t n = read<uint64_t>(what);
        if (n > left() / min_bytes)
            throw Error(name_, ": ", what, " is ", n, ", but the ", left(),
                        " bytes left in the file hold at most ", left() / min_bytes);
        return n;
    }

   private:
    const unsigned char* data_;
    size_t size_, pos_ = 0;
    const std::string& name_;
};

GgufArray read_array(Cursor& in, const std::string& what, const std::string& name, int depth);

// What to reserve for n objects of `object_bytes` each: no more than the bytes left in the file,
// so that one reservation is never larger than the input (objects outgrow their file bytes:
// a string takes 8 bytes in the file and 32 in memory). Past that, vectors grow as they fill.
size_t capped(uint64_t n, uint64_t bytes_left, size_t object_bytes) {
    return size_t(std::min<uint64_t>(n, bytes_left / object_bytes));
}

GgufValue read_value(Cursor& in, GgufType type, const std::string& what, const std::string& name,
                     int depth) {
    switch (type) {
        case GgufType::U8:
            return in.read<uint8_t>(what);
        case GgufType::I8:
            return in.read<int8_t>(what);
        case GgufType::U16:
            return in.read<uint16_t>(what);
        case GgufType::I16:
            return in.read<int16_t>(what);
        case GgufType::U32:
            return in.read<uint32_t>(what);
        case GgufType::I32:
            return in.read<int32_t>(what);
        case GgufType::F32:
            return in.read<float>(what);
        case GgufType::U64:
            return in.read<uint64_t>(what);
        case GgufType::I64:
            return in.read<int64_t>(what);
        case GgufType::F64:
            return in.read<double>(what);
        case GgufType::Bool: {
            const uint8_t b = in.read<uint8_t>(what);
            if (b > 1)
                throw Error(name, ": ", what, " is a bool of value ", int(b), " (not 0 or 1)");
            return b == 1;
        }
        case GgufType::String:
            return in.read_string(what);
        case GgufType::Array:
            return read_array(in, what, name, depth);
    }
    TANDEM_ASSERT(false, "unreachable GGUF type", uint32_t(type));
}

GgufArray read_array(Cursor& in, const std::string& what, const std::string& name, int depth) {
    if (depth >= kMaxArrayDepth)
        throw Error(name, ": ", what, " nests arrays more than ", kMaxArrayDepth, " deep");
    const uint32_t t = in.read<uint32_t>(what + " (element type)");
    if (!is_valid_type(t))
        throw Error(name, ": ", what, " has element type ", t, ", which is no GGUF type (0 to 12)");
    GgufArray a;
    a.type = GgufType(t);
    const uint64_t n = in.read_count(what + "'s element count", gguf_element_bytes(a.type));
    if (a.type == GgufType::String) {
        a.strings.reserve(capped(n, in.left(), sizeof(std::string)));
        for (uint64_t i = 0; i < n; ++i)
            a.strings.push_back(in.read_string(what + "[" + std::to_string(i) + "]"));
    } else if (a.type == GgufType::Array) {
        a.arrays.reserve(capped(n, in.left(), sizeof(GgufArray)));
        for (uint64_t i = 0; i < n; ++i)
            a.arrays.push_back(
                read_array(in, what + "[" + std::to_string(i) + "]", name, depth + 1));
    } else {
        const uint64_t bytes = n * gguf_element_bytes(a.type);
        const unsigned char* p = in.take(bytes, what);
        if (a.type == GgufType::Bool)
            for (uint64_t i = 0; i < n; ++i)
                if (p[i] > 1)
                    throw Error(name, ": ", what, "[", i, "] is a bool of value ", int(p[i]),
                                " (not 0 or 1)");
        a.raw.assign(p, p + bytes);
    }
    return a;
}

}  // namespace

// ---- tensors ----

std::string_view ggml_type_name(uint32_t type) {
    if (type >= std::size(kGgmlTypeNames)) return "unknown";
    return kGgmlTypeNames[type];
}

uint32_t ggml_type_of(DType dtype) {
    switch (dtype) {
        case DType::F32:
            return 0;
        case DType::F16:
            return 1;
        case DType::Q4_0:
            return 2;
        case DType::Q8_0:
            return 8;
        case DType::BF16:
            return 30;
        case DType::F64:
        case DType::I32:
            break;
    }
    TANDEM_ASSERT(false, "no GGUF model type for", dtype_name(dtype));
}

int64_t GgufTensor::numel() const {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    return n;
}

// ---- reader ----

GgufReader::GgufReader(const std::string& path) : name_(path), file_(path), metadata_(path) {
    parse(file_.data(), file_.size());
}

GgufReader::GgufReader(const void* data, size_t size, std::string name)
    : name_(std::move(name)), metadata_(name_) {
    parse(static_cast<const unsigned char*>(data), size);
}

void GgufReader::parse(const unsigned char* data, size_t size) {
    const std::string& name = name_;
    Cursor in(data, size, name);
    if (size < 4 || std::memcmp(data, "GGUF", 4) != 0)
        throw Error(name, ": not a GGUF file (it does not start with the bytes 'GGUF')");
    in.take(4, "magic");
    version_ = in.read<uint32_t>("version");
    if (version_ == 1)
        throw Error(name,
                    ": GGUF version 1 is not supported (tandem reads versions 2 and 3; "
                    "convert the model again with a current llama.cpp)");
    if (version_ != 2 && version_ != 3) {
        const bool swapped = (version_ & 0xffffu) == 0;
        throw Error(name, ": GGUF version ", version_, " is not supported (tandem reads 2 and 3)",
                    swapped ? "; the file looks big-endian, which tandem does not read" : "");
    }
    // A key-value pair takes at least 13 bytes (key length, type, one value byte), a tensor
    // info at least 24 (name length, n_dims, type, offset).
    const uint64_t n_tensors = in.read<uint64_t>("tensor count");
    const uint64_t n_kv = in.read_count("metadata count", 13);
    if (n_tensors > in.left() / 24)
        throw Error(name, ": tensor count is ", n_tensors, ", but the ", in.left(),
                    " bytes left in the file hold at most ", in.left() / 24, " tensor infos");

    for (uint64_t i = 0; i < n_kv; ++i) {
        const std::string what = "metadata key " + std::to_string(i);
        std::string key = in.read_string(what);
        if (key.empty()) throw Error(name, ": ", what, " is empty");
        if (metadata_.contains(key)) throw Error(name, ": metadata key '", key, "' appears twice");
        const std::string field = "metadata '" + key + "'";
        const uint32_t type = in.read<uint32_t>(field + " (its type)");
        if (!is_valid_type(type))
            throw Error(name, ": ", field, " has type ", type, ", which is no GGUF type (0 to 12)");
        GgufValue value = read_value(in, GgufType(type), field, name, 0);
        metadata_.set(std::move(key), std::move(value));
    }

    if (const GgufValue* a = metadata_.find("general.alignment")) {
        const auto* u = std::get_if<uint32_t>(a);
        if (!u)
            throw Error(name, ": general.alignment is of type ", gguf_type_name(gguf_type_of(*a)),
                        " but u32 was expected");
        if (*u == 0 || !std::has_single_bit(*u))
            throw Error(name, ": general.alignment is ", *u, ", which is not a power of two");
        alignment_ = *u;
    }

    tensors_.reserve(capped(n_tensors, in.left(), sizeof(GgufTensor)));
    for (uint64_t i = 0; i < n_tensors; ++i) {
        GgufTensor t;
        t.name = in.read_string("tensor info " + std::to_string(i) + " (its name)");
        const std::string field = "tensor '" + t.name + "'";
        if (by_name_.count(t.name)) throw Error(name, ": ", field, " appears twice");
        const uint32_t n_dims = in.read<uint32_t>(field + " (its dimension count)");
        if (n_dims > kMaxDims)
            throw Error(name, ": ", field, " has ", n_dims, " dimensions (GGUF allows at most 4)");
        int64_t ne[kMaxDims] = {1, 1, 1, 1};
        uint64_t numel = 1;
        for (uint32_t d = 0; d < n_dims; ++d) {
            ne[d] = in.read<int64_t>(field + " (dimension " + std::to_string(d) + ")");
            if (ne[d] < 0) throw Error(name, ": ", field, " has negative dimension ", ne[d]);
            if (__builtin_mul_overflow(numel, uint64_t(ne[d]), &numel) ||
                numel > uint64_t(std::numeric_limits<int64_t>::max()))
                throw Error(name, ": ", field, "'s dimensions multiply past 2^63 elements");
        }
        for (uint32_t d = n_dims; d-- > 0;) t.shape.push_back(ne[d]);  // tandem order
        const uint32_t type = in.read<uint32_t>(field + " (its type)");
        if (!dtype_from_ggml(type, t.dtype))
            throw Error(name, ": ", field, " has type ", ggml_type_name(type), " (", type,
                        "), which tandem does not read (it reads F32, F16, BF16, Q8_0, Q4_0)");
        const uint64_t block = uint64_t(dtype_block_values(t.dtype));
        if (uint64_t(ne[0]) % block != 0)
            throw Error(name, ": ", field, " is ", dtype_name(t.dtype),
                        " but its first GGUF "
                        "dimension (ne[0] = ",
                        ne[0], ") is not a whole number of ", block, "-value blocks");
        uint64_t bytes = 0;
        if (__builtin_mul_overflow(numel / block, uint64_t(dtype_block_bytes(t.dtype)), &bytes))
            throw Error(name, ": ", field, " needs more than 2^64 bytes");
        t.bytes = bytes;
        t.offset = in.read<uint64_t>(field + " (its offset)");
        by_name_.emplace(t.name, tensors_.size());
        tensors_.push_back(std::move(t));
    }

    // The data section starts at the next multiple of the alignment (of the file, since the
    // file starts at 0).
    data_offset_ = (in.pos() + alignment_ - 1) / alignment_ * alignment_;
    const uint64_t data_bytes = data_offset_ <= size ? size - data_offset_ : 0;
    if (!tensors_.empty() && data_offset_ > size)
        throw Error(name, ": truncated: the data section would start at offset ", data_offset_,
                    " but the file ends at ", size);
    for (GgufTensor& t : tensors_) {
        if (t.offset % alignment_ != 0)
            throw Error(name, ": tensor '", t.name, "' starts at data offset ", t.offset,
                        ", which is not a multiple of the alignment ", alignment_);
        if (t.offset > data_bytes || t.bytes > data_bytes - t.offset)
            throw Error(name, ": tensor '", t.name, "' (", dtype_name(t.dtype), shape_text(t.shape),
                        ", ", t.bytes, " bytes at data offset ", t.offset,
                        ") runs past the end of the file (the data section holds ", data_bytes,
                        " bytes): the file is truncated or corrupt");
        t.data = data + data_offset_ + t.offset;
    }
    // No two tensors may share bytes (empty tensors share none).
    std::vector<const GgufTensor*> order;
    for (const GgufTensor& t : tensors_)
        if (t.bytes > 0) order.push_back(&t);
    std::sort(order.begin(), order.end(),
              [](const GgufTensor* a, const GgufTensor* b) { return a->offset < b->offset; });
    for (size_t i = 1; i < order.size(); ++i)
        if (order[i]->offset < order[i - 1]->offset + order[i - 1]->bytes)
            throw Error(name, ": tensors '", order[i - 1]->name, "' and '", order[i]->name,
                        "' overlap in the data section");
}

const GgufTensor* GgufReader::find(std::string_view name) const {
    auto it = by_name_.find(std::string(name));
    return it == by_name_.end() ? nullptr : &tensors_[it->second];
}

const GgufTensor& GgufReader::get(std::string_view name) const {
    const GgufTensor* t = find(name);
    if (!t) throw Error(name_, ": has no tensor '", name, "'");
    return *t;
}

const GgufTensor& GgufReader::get(std::string_view name, const std::vector<int64_t>& shape) const {
    const GgufTensor& t = get(name);
    if (t.shape != shape)
        throw Error(name_, ": tensor '", name, "' has shape ", shape_text(t.shape), " but ",
                    shape_text(shape), " was expected");
    return t;
}

// ---- writer ----

namespace {

class Bytes {
   public:
    template <typename T>
    void put(T v) {
        const size_t at = out_.size();
        out_.resize(at + sizeof(T));
        std::memcpy(out_.data() + at, &v, sizeof(T));
    }
    void put_string(std::string_view s) {
        put<uint64_t>(s.size());
        out_.append(s);
    }
    void put_raw(const std::vector<uint8_t>& raw) { out_.append(raw.begin(), raw.end()); }
    void pad(uint64_t alignment) {
        out_.append((alignment - out_.size() % alignment) % alignment, '\0');
    }
    std::string& text() { return out_; }

   private:
    std::string out_;
};

void put_array(Bytes& out, const GgufArray& a, const std::string& key) {
    out.put<uint32_t>(uint32_t(a.type));
    out.put<uint64_t>(a.size());
    if (a.type == GgufType::String) {
        for (const std::string& s : a.strings) out.put_string(s);
    } else if (a.type == GgufType::Array) {
        for (const GgufArray& inner : a.arrays) put_array(out, inner, key);
    } else {
        TANDEM_ASSERT(a.raw.size() % gguf_element_bytes(a.type) == 0, key, a.raw.size());
        out.put_raw(a.raw);
    }
}

void put_value(Bytes& out, const GgufValue& v, const std::string& key) {
    std::visit(
        [&](const auto& x) {
            using T = std::decay_t<decltype(x)>;
            if constexpr (std::is_same_v<T, std::string>)
                out.put_string(x);
            else if constexpr (std::is_same_v<T, GgufArray>)
                put_array(out, x, key);
            else if constexpr (std::is_same_v<T, bool>)
                out.put<uint8_t>(x ? 1 : 0);
            else
                out.put<T>(x);
        },
        v);
}

}  // namespace

uint64_t save_gguf(const std::string& path, const GgufMetadata& metadata,
                   std::span<const GgufTensor> tensors, WriteMode mode) {
    uint64_t alignment = kDefaultAlignment;
    if (const GgufValue* a = metadata.find("general.alignment")) {
        const auto* u = std::get_if<uint32_t>(a);
        if (!u || *u == 0 || !std::has_single_bit(*u))
            throw Error(path, ": general.alignment must be a u32 power of two");
        alignment = *u;
    }
    Bytes out;
    out.put<uint32_t>(kMagic);
    out.put<uint32_t>(3);
    out.put<uint64_t>(tensors.size());
    out.put<uint64_t>(metadata.size());
    for (const auto& [key, value] : metadata.entries()) {
        out.put_string(key);
        out.put<uint32_t>(uint32_t(gguf_type_of(value)));
        put_value(out, value, key);
    }
    uint64_t offset = 0;
    for (const GgufTensor& t : tensors) {
        if (t.name.size() >= kMaxNameBytes)
            throw Error(path, ": tensor name '", t.name, "' is ", t.name.size(),
                        " bytes; llama.cpp reads names of at most ", kMaxNameBytes - 1);
        if (t.shape.size() > kMaxDims)
            throw Error(path, ": tensor '", t.name, "' has ", t.shape.size(),
                        " dimensions (GGUF allows at most 4)");
        const int64_t block = dtype_block_values(t.dtype);
        if (is_block_dtype(t.dtype) && (t.shape.empty() || t.shape.back() % block != 0))
            throw Error(path, ": tensor '", t.name, "' is ", dtype_name(t.dtype),
                        shape_text(t.shape), " but its last dimension must be a multiple of ",
                        block);
        const size_t bytes = dtype_bytes(t.dtype, t.numel());
        TANDEM_ASSERT(t.bytes == 0 || t.bytes == bytes, t.name, t.bytes, bytes);
        out.put_string(t.name);
        out.put<uint32_t>(uint32_t(t.shape.size()));
        for (size_t d = t.shape.size(); d-- > 0;) out.put<int64_t>(t.shape[d]);  // ne order
        out.put<uint32_t>(ggml_type_of(t.dtype));
        out.put<uint64_t>(offset);
        offset += (bytes + alignment - 1) / alignment * alignment;
    }
    out.pad(alignment);

    AtomicFile file(path, mode);
    file.write(out.text());
    static const char zeros[256] = {};
    for (const GgufTensor& t : tensors) {
        const size_t bytes = dtype_bytes(t.dtype, t.numel());
        file.write(t.data, bytes);
        for (size_t pad = (alignment - bytes % alignment) % alignment; pad > 0;) {
            const size_t n = std::min(pad, sizeof(zeros));
            file.write(zeros, n);
            pad -= n;
        }
    }
    file.commit();
    return *file.checksum();
}

}  // namespace tandem::io

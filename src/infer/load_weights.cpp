// Reading an opened model's tensors into Weights: name by name against the family's layout, with
// the shape checked, the file's own transformations undone, and the dtype converted or kept.
#include <cstring>
#include <set>

#include "core/error.h"
#include "core/quant.h"
#include "infer/model_source.h"
#include "io/mapped_file.h"
#include "io/tokenizer_files.h"

namespace tandem::infer {

namespace {

std::string shape_text(const std::vector<int64_t>& shape) {
    std::string out = "[";
    for (size_t i = 0; i < shape.size(); ++i) out += (i ? ", " : "") + std::to_string(shape[i]);
    return out + "]";
}

// The shape of the tensor in tandem's layout, as the file stores it.
std::vector<int64_t> tandem_shape(const SourceTensor& t) {
    if (!t.is_transposed) return t.shape;
    return {t.shape[1], t.shape[0]};
}

// Safetensors may hold dtypes that are not storage dtypes of weights (f64): those become f32.
DType storable(DType dtype) {
    return dtype == DType::F64 || dtype == DType::I32 ? DType::F32 : dtype;
}

// The tensor's values in tandem's layout, in `dtype`, in host memory.
std::vector<char> read_tensor(const SourceTensor& t, int64_t numel, DType dtype) {
    std::vector<char> out(dtype_bytes(dtype, numel));
    if (!t.is_transposed) {
        // A permutation of whole rows: moved as bytes, so a block dtype stays bit for bit.
        const int64_t cols = t.shape.size() == 2 ? t.shape[1] : 1;  // biases: rows of one
        const size_t row_bytes = dtype_bytes(t.dtype, cols);
        std::vector<char> rows(dtype_bytes(t.dtype, numel));
        for (size_t i = 0; i < t.row_order.size(); ++i)
            std::memcpy(rows.data() + i * row_bytes,
                        static_cast<const char*>(t.data) + t.row_order[i] * row_bytes, row_bytes);
        convert_values(out.data(), dtype, rows.data(), t.dtype, numel);
        return out;
    }
    std::vector<float> stored(numel), transposed(numel);
    convert_values(stored.data(), DType::F32, t.data, t.dtype, numel);
    const int64_t rows = t.shape[0], cols = t.shape[1];
    for (int64_t r = 0; r < rows; ++r)
        for (int64_t c = 0; c < cols; ++c) transposed[c * rows + r] = stored[r * cols + c];
    convert_values(out.data(), dtype, transposed.data(), DType::F32, numel);
    return out;
}

// Bits of precision a stored value keeps, for refusing to widen: f16 and bf16 count as one
// width (converting between them trades range for mantissa, it widens nothing).
int precision_rank(DType dtype) {
    switch (dtype) {
        case DType::Q4_0:
            return 0;
        case DType::Q8_0:
            return 1;
        case DType::F16:
        case DType::BF16:
            return 2;
        default:
            return 3;
    }
}

// Every tensor of the layout is in the file with the layout's shape, and the file has no tensor
// the layout would drop.
void check_tensors(const ModelSource& source, const model::ParamLayout& layout) {
    const std::string family(model::family_name(source.config().family));
    for (const model::ParamEntry& e : layout.entries()) {
        const SourceTensor* t = source.find(e.name);
        if (!t)
            throw Error(source.path(), ": has no tensor '", e.name, "', which a ", family,
                        " model of this config.json has (another architecture, or a partial file?)");
        const std::vector<int64_t> want(e.shape.dims.begin(), e.shape.dims.begin() + e.shape.ndim);
        if (tandem_shape(*t) != want)
            throw Error(t->file, ": tensor '", e.name, "' is ", shape_text(tandem_shape(*t)),
                        " but the config implies ", shape_text(want));
    }
    std::set<std::string> unused;
    for (const auto& t : source.tensors())
        if (!layout.find(t.name)) unused.insert(t.name);
    // A tied head may still be stored; anything else the layout lacks would be silently dropped.
    if (source.config().tie_embeddings) unused.erase("lm_head.weight");
    if (!unused.empty())
        throw Error(source.find(*unused.begin())->file, ": tensor '", *unused.begin(), "' (and ",
                    unused.size() - 1, " more) has no place in a ", family,
                    " model of this config (a feature tandem does not implement?)");
}

// The tensors read into Weights whose tensor dtypes dtype_of chooses, one tensor at a time (at
// most one tensor's values in host memory besides the mapped file, whatever the dtypes).
model::Weights read_weights(const ModelSource& source, backend::Backend& backend,
                            const model::ParamLayout& layout,
                            const model::Weights::DTypeRule& dtype_of) {
    model::Weights weights(source.config(), backend, dtype_of);
    for (const model::ParamEntry& e : layout.entries()) {
        const SourceTensor& t = *source.find(e.name);
        if (!t.is_transposed && t.row_order.empty()) {
            weights.set(e.name, t.data, t.dtype, e.numel());  // straight from the mapped file
        } else {
            const DType want = weights.dtype_of(e.name);
            const std::vector<char> values = read_tensor(t, e.numel(), want);
            weights.set(e.name, values.data(), want, e.numel());
        }
        // Peak memory: the file's pages and the weights are not resident at once.
        io::release_pages(t.data, dtype_bytes(t.dtype, e.numel()));
    }
    return weights;
}

}  // namespace

model::Weights load_weights(const ModelSource& source, backend::Backend& backend,
                            std::optional<DType> dtype) {
    const model::ParamLayout layout = model::make_layout(source.config());
    check_tensors(source, layout);
    return read_weights(source, backend, layout, [&](const model::ParamEntry& e) {
        if (dtype) return *dtype;
        const DType stored = storable(source.find(e.name)->dtype);
        return e.shape[-1] % dtype_block_values(stored) == 0 ? stored : DType::F32;
    });
}

model::Weights load_weights_quantized(const ModelSource& source, backend::Backend& backend,
                                      DType quant) {
    const model::ParamLayout layout = model::make_layout(source.config());
    check_tensors(source, layout);
    const model::Weights::DTypeRule rule = model::storage_dtype_rule(quant);
    for (const model::ParamEntry& e : layout.entries()) {
        const SourceTensor& t = *source.find(e.name);
        const DType want = rule(e);
        // Norms and biases become f32 whatever the file holds, as llama.cpp keeps them.
        if (e.shape.ndim >= 2 && precision_rank(want) > precision_rank(t.dtype))
            throw Error(t.file, ": tensor '", e.name, "' is stored as ", dtype_name(t.dtype),
                        ", narrower than --quant ", dtype_name(quant),
                        "; widening it would not bring back the precision it lost (use --quant ",
                        dtype_name(t.dtype), " or narrower, or a wider original of the model)");
    }
    return read_weights(source, backend, layout, rule);
}

LoadedModel load_model(const std::string& path, backend::Backend& backend,
                       std::optional<DType> quant) {
    LoadedModel out;
    out.source = ModelSource::open(path);
    out.weights = std::make_unique<model::Weights>(
        quant ? load_weights_quantized(*out.source, backend, *quant)
              : load_weights(*out.source, backend, DType::F32));
    out.tokenizer = std::make_unique<io::BpeTokenizer>(out.source->tokenizer());
    const int64_t V = out.source->config().vocab_size;
    if (out.tokenizer->vocab_size() > V)
        throw Error(out.source->path(), ": the tokenizer has ", out.tokenizer->vocab_size(),
                    " ids but the model only ", V);
    return out;
}

}  // namespace tandem::infer

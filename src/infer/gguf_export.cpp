// The GGUF writer of `tandem export`: llama.cpp's metadata and tokenizer keys, and every tensor
// under its GGUF name with the converter's changes applied, matrices in the asked type.
#include "core/error.h"
#include "infer/gguf_model.h"
#include "infer/model_export.h"
#include "io/gguf.h"
#include "io/gguf_tokenizer.h"

namespace tandem::infer {

void export_gguf(const ModelSource& source, const model::Weights& weights, const ExportOptions& options) {
    if (options.dtype == DType::F64 || options.dtype == DType::I32)
        throw Error("--type ", dtype_name(options.dtype), ": GGUF tensors here are f32, f16, bf16, q8_0 or q4_0");
    const model::ModelConfig& c = weights.config();
    io::GgufMetadata metadata;
    add_config_to_gguf(metadata, c, c.qkv_bias);
    metadata.set("general.name", std::string("tandem export of ") + source.path());
    add_bpe_model_to_gguf(metadata, source.tokenizer(), size_t(weights.config().vocab_size));
    const std::string arch = gguf_architecture(c, c.qkv_bias);

    std::vector<OwnedGgufTensor> owned;
    std::vector<io::GgufTensor> infos;
    owned.reserve(weights.layout().entries().size());
    for (const model::ParamEntry& e : weights.layout().entries()) {
        const GgufTensorMapping m = gguf_tensor_for_hf(e.name, c, arch);
        const std::vector<int64_t> shape(e.shape.dims.begin(), e.shape.dims.begin() + e.shape.ndim);
        // Norms and biases stay f32, as llama.cpp keeps them; a matrix whose GGUF rows are not
        // whole blocks falls back to f16.
        const int64_t row = m.transform == GgufTransform::Transpose ? shape[0] : shape.back();
        DType dtype = shape.size() < 2 ? DType::F32 : options.dtype;
        if (row % dtype_block_values(dtype) != 0) dtype = DType::F16;
        owned.push_back(gguf_tensor_from_hf(m, weights.get_f32(e.name), shape, dtype));
        infos.push_back(owned.back().info);
    }
    io::save_gguf(options.out, metadata, infos);
}

}  // namespace tandem::infer

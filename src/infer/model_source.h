// A model as `--model` names it, opened but not yet loaded: a tandem run or checkpoint directory,
// a Hugging Face model directory (config.json, model.safetensors or its shards and index,
// tokenizer files, generation_config.json), or a llama.cpp .gguf file. Opening validates the
// headers and maps the files; load_weights reads the tensors into a model::Weights on a backend.
// `generate`, `info`, `export`, `verify` and `train init=PATH` all start here.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "io/bpe_tokenizer.h"
#include "model/config.h"
#include "model/weights.h"

namespace tandem::infer {

enum class ModelFormat { TandemCheckpoint, HuggingFace, Gguf };
std::string_view format_name(ModelFormat format);  // "tandem checkpoint", "Hugging Face", "GGUF"

// One tensor as a file stores it, under tandem's (Hugging Face) name.
struct SourceTensor {
    std::string name;
    DType dtype = DType::F32;
    std::vector<int64_t> shape;  // row-major, as stored
    const void* data = nullptr;  // in a mapped file
    std::string file;            // for messages
    // Stored transposed against tandem's layout (GGUF's GPT-2 products).
    bool is_transposed = false;
    // Row i of tandem's tensor is stored row row_order[i] (GGUF's Llama q/k heads); empty: same.
    std::vector<int64_t> row_order;
};

// What generation_config.json adds (or the tokenizer implies): the tokens that end a reply.
struct GenerationDefaults {
    std::vector<int32_t> stop_ids;
};

class ModelSource {
public:
    // Throws Error naming the path and what was looked for when it is none of the three, and
    // naming the file and the field when a header is wrong.
    static std::unique_ptr<ModelSource> open(const std::string& path);
    virtual ~ModelSource() = default;

    ModelFormat format() const { return format_; }
    const std::string& path() const { return path_; }  // the directory or file read
    const model::ModelConfig& config() const { return config_; }
    const io::BpeModel& tokenizer() const { return tokenizer_; }
    const GenerationDefaults& generation() const { return generation_; }
    const std::vector<SourceTensor>& tensors() const { return tensors_; }
    const SourceTensor* find(std::string_view name) const;
    // The dtype the file stores most of the matrices in (what `info` reports).
    DType main_dtype() const;

protected:
    ModelFormat format_ = ModelFormat::HuggingFace;
    std::string path_;
    model::ModelConfig config_;
    io::BpeModel tokenizer_;
    GenerationDefaults generation_;
    std::vector<SourceTensor> tensors_;
};

// The tensors of `source` in a Weights on `backend`: each converted to `dtype`, or kept in the
// dtype the file stores it in when `dtype` is nullopt (export, `info`). Throws Error naming the
// file and the tensor for a missing tensor, a wrong shape, or a tensor the layout does not have.
model::Weights load_weights(const ModelSource& source, backend::Backend& backend,
                            std::optional<DType> dtype);

// The tensors of `source` stored as `--quant` asks: storage_dtype_rule(quant) (matrices in
// quant, 1-D tensors in f32, rows that are not whole blocks in f16), each tensor converted
// straight from the mapped file (a Q8_0 tensor asked for as Q8_0 is copied bit for bit). Throws
// Error naming the file and the tensor when the file stores a matrix narrower than it would
// become (--quant q8_0 on a Q4_0 file): widening would pretend to a precision the file lacks.
model::Weights load_weights_quantized(const ModelSource& source, backend::Backend& backend,
                                      DType quant);

// Weights for inference and the tokenizer that goes with them.
struct LoadedModel {
    std::unique_ptr<ModelSource> source;
    std::unique_ptr<model::Weights> weights;
    std::unique_ptr<io::BpeTokenizer> tokenizer;
};
// open + load_weights in the backend's compute dtype (f32), or load_weights_quantized when
// `quant` is given, + the tokenizer, checked against the model's vocabulary.
LoadedModel load_model(const std::string& path, backend::Backend& backend,
                       std::optional<DType> quant = std::nullopt);

}  // namespace tandem::infer

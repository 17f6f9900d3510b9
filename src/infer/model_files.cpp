// Reads config.json, model.safetensors and tokenizer.json of a checkpoint.
#include "infer/model_files.h"

#include <filesystem>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "io/atomic_file.h"
#include "io/checkpoint_dir.h"
#include "io/safetensors.h"
#include "io/tokenizer_files.h"
#include "model/hf_config.h"

namespace tandem::infer {

namespace fs = std::filesystem;

InferenceModel load_inference_model(const std::string& path, backend::Backend& be) {
    InferenceModel out;
    out.checkpoint = io::resolve_checkpoint(path);
    const std::string config_path = (fs::path(out.checkpoint) / "config.json").string();
    model::ModelConfig config;
    try {
        config = model::config_from_hf_json(nlohmann::json::parse(io::read_file(config_path)));
    } catch (const nlohmann::json::exception& e) {
        throw Error(config_path, ": not valid JSON: ", e.what());
    } catch (const Error& e) {
        throw Error(config_path, ": ", e.what());
    }
    // Inference needs no training arena: the decoder brings its own buffers.
    out.model = std::make_unique<model::Model>(config, be, DType::F32, 1, 1);
    io::SafetensorsReader reader((fs::path(out.checkpoint) / "model.safetensors").string());
    for (const auto& entry : out.model->layout().entries()) {
        const std::vector<int64_t> shape(entry.shape.dims.begin(), entry.shape.dims.begin() + entry.shape.ndim);
        const auto& t = reader.get(entry.name, DType::F32, shape);
        out.model->load_param(entry.name, {static_cast<const float*>(t.data), static_cast<size_t>(t.numel())});
    }
    out.tokenizer = std::make_unique<io::BpeTokenizer>(
        io::load_tokenizer((fs::path(out.checkpoint) / "tokenizer.json").string()));
    if (out.tokenizer->vocab_size() > config.vocab_size)
        throw Error(out.checkpoint, ": tokenizer.json has ", out.tokenizer->vocab_size(),
                    " ids but the model only ", config.vocab_size);
    return out;
}

}  // namespace tandem::infer

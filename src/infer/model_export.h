// Writing a model in the formats other tools read: a Hugging Face directory (safetensors,
// config.json, tokenizer.json, tokenizer_config.json, generation_config.json) or one llama.cpp
// GGUF file. Each is written under a temporary name and renamed into place when complete; an
// existing output is never replaced and the source is never touched.
#pragma once

#include <string>

#include "infer/model_source.h"

namespace tandem::infer {

enum class ExportFormat { HuggingFace, Gguf };
ExportFormat export_format_from_name(std::string_view name);  // "hf" | "gguf"; Error otherwise

struct ExportOptions {
    ExportFormat format = ExportFormat::HuggingFace;
    DType dtype = DType::F32;  // matrices; norms and biases stay f32 (model::storage_dtype_rule)
    std::string out;
};

// Throws Error (nothing written) for a dtype the format cannot hold (safetensors has no Q8_0),
// an existing output, or an output inside the source.
void export_model(const ModelSource& source, const model::Weights& weights,
                  const ExportOptions& options);

}  // namespace tandem::infer

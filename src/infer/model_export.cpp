// The Hugging Face writer; the GGUF writer is gguf_export.cpp.
#include "infer/model_export.h"

#include <filesystem>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "io/atomic_file.h"
#include "io/checkpoint_dir.h"
#include "io/safetensors.h"
#include "io/tokenizer_config.h"
#include "io/tokenizer_files.h"
#include "model/hf_config.h"

namespace tandem::infer {

namespace fs = std::filesystem;

void export_gguf(const ModelSource& source, const model::Weights& weights,
                 const ExportOptions& options);  // gguf_export.cpp

namespace {

std::string torch_dtype_name(DType dtype) {
    switch (dtype) {
        case DType::BF16: return "bfloat16";
        case DType::F16: return "float16";
        default: return "float32";
    }
}

void export_hf(const ModelSource& source, const model::Weights& weights, const ExportOptions& options) {
    if (is_block_dtype(options.dtype) || options.dtype == DType::F64 || options.dtype == DType::I32)
        throw Error("--type ", dtype_name(options.dtype),
                    ": Hugging Face safetensors hold f32, f16 or bf16 (GGML's block types go to "
                    "--format gguf)");
    const model::Weights out = weights.converted(weights.backend(),
                                                 model::storage_dtype_rule(options.dtype));
    std::vector<io::SafetensorsTensor> tensors;
    std::vector<std::vector<char>> host;  // the weights may live on a device
    for (const model::ParamEntry& e : out.layout().entries()) {
        const DType dtype = out.dtype_of(e.name);
        host.emplace_back(dtype_bytes(dtype, e.numel()));
        out.get(e.name, host.back().data(), dtype);
        tensors.push_back({e.name, dtype, {e.shape.dims.begin(), e.shape.dims.begin() + e.shape.ndim},
                           host.back().data(), host.back().size()});
    }
    io::CheckpointDirWriter dir(options.out);
    const std::string weights_file = dir.file("model.safetensors");
    dir.note_checksum("model.safetensors",
                      io::save_safetensors(weights_file, tensors, {{"format", "pt"}}));
    nlohmann::json config = model::config_to_hf_json(source.config());
    config["torch_dtype"] = torch_dtype_name(options.dtype);
    const io::BpeModel& tokenizer = source.tokenizer();
    if (tokenizer.bos_id >= 0) config["bos_token_id"] = tokenizer.bos_id;
    if (tokenizer.eos_id >= 0) config["eos_token_id"] = tokenizer.eos_id;
    io::write_file_atomic(dir.file("config.json"), config.dump(2) + "\n");
    io::save_hf_tokenizer_json(tokenizer, dir.file("tokenizer.json"));
    io::save_tokenizer_config_json(tokenizer, dir.file("tokenizer_config.json"));
    nlohmann::json generation = {{"_from_model_config", false}};
    if (!source.generation().stop_ids.empty()) generation["eos_token_id"] = source.generation().stop_ids;
    else if (tokenizer.eos_id >= 0) generation["eos_token_id"] = tokenizer.eos_id;
    if (tokenizer.bos_id >= 0) generation["bos_token_id"] = tokenizer.bos_id;
    io::write_file_atomic(dir.file("generation_config.json"), generation.dump(2) + "\n");
    dir.commit();
}

}  // namespace

ExportFormat export_format_from_name(std::string_view name) {
    if (name == "hf") return ExportFormat::HuggingFace;
    if (name == "gguf") return ExportFormat::Gguf;
    throw Error("--format must be hf or gguf, got '", name, "'");
}

void export_model(const ModelSource& source, const model::Weights& weights,
                  const ExportOptions& options) {
    std::string out = options.out;
    while (out.size() > 1 && out.back() == '/') out.pop_back();
    if (out.empty()) throw Error("--out is empty");
    if (fs::exists(out))
        throw Error(out, ": already exists; choose another --out (an export never replaces files)");
    const fs::path out_abs = fs::weakly_canonical(fs::absolute(out));
    const fs::path source_abs = fs::weakly_canonical(fs::absolute(source.path()));
    const auto [end, _] = std::mismatch(source_abs.begin(), source_abs.end(), out_abs.begin(), out_abs.end());
    if (end == source_abs.end())
        throw Error(out, ": is inside the source ", source.path(), "; choose an --out elsewhere");
    ExportOptions resolved = options;
    resolved.out = out;
    if (options.format == ExportFormat::Gguf) return export_gguf(source, weights, resolved);
    export_hf(source, weights, resolved);
}

}  // namespace tandem::infer

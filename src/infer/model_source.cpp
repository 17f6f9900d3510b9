// Opening tandem checkpoints and Hugging Face directories; GGUF files are gguf_source.cpp's.
//
// A Hugging Face model directory, the parts read here:
//   config.json                       model_type gpt2 | llama | qwen2 | qwen3 (model/hf_config.h)
//   model.safetensors                 every tensor; or, when it is absent,
//   model.safetensors.index.json      {"weight_map": {tensor name: shard file name}} and the
//   model-0000N-of-0000M.safetensors  shards it names (plain file names in the same directory)
//   tokenizer.json, tokenizer_config.json   io/tokenizer_files.h
//   generation_config.json            optional: eos_token_id (an id or a list) ends generation
// A tandem checkpoint is such a directory with a MANIFEST.json that must verify (as must the one
// tandem's exports carry); a run directory stands for its newest valid checkpoint.
#include "infer/model_source.h"

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "core/error.h"
#include "io/atomic_file.h"
#include "io/json_fields.h"
#include "io/checkpoint_dir.h"
#include "io/safetensors.h"
#include "io/tokenizer_files.h"
#include "model/hf_config.h"

namespace tandem::infer {

namespace fs = std::filesystem;

std::unique_ptr<ModelSource> open_gguf_source(const std::string& path);  // gguf_source.cpp

namespace {

nlohmann::json read_json(const fs::path& path) {
    return io::parse_json_text(io::read_file(path.string()), path.string());
}

// Tensors a Hugging Face file may hold that are buffers, not parameters: GPT-2's causal masks
// ("h.N.attn.bias", "h.N.attn.masked_bias") and RoPE tables ("...rotary_emb.inv_freq").
bool is_buffer_name(const std::string& name) {
    const auto ends_with = [&](std::string_view s) {
        return name.size() >= s.size() && name.compare(name.size() - s.size(), s.size(), s) == 0;
    };
    if (ends_with("rotary_emb.inv_freq") || ends_with(".attn.masked_bias")) return true;
    return ends_with(".attn.bias") && name.find("c_attn") == std::string::npos;
}

class HfSource : public ModelSource {
public:
    HfSource(const std::string& dir, ModelFormat format) {
        format_ = format;
        path_ = dir;
        const fs::path root(dir);
        const fs::path config_path = root / "config.json";
        try {
            config_ = model::config_from_hf_json(read_json(config_path));
        } catch (const Error& e) {
            if (std::string_view(e.what()).starts_with(config_path.string())) throw;
            throw Error(config_path.string(), ": ", e.what());
        }
        open_weights(root);
        tokenizer_ = io::load_tokenizer_model(dir);
        if (fs::exists(root / "generation_config.json"))
            read_generation_config(root / "generation_config.json");
    }

private:
    void open_weights(const fs::path& root) {
        std::vector<std::string> files;
        if (fs::exists(root / "model.safetensors")) {
            files.push_back("model.safetensors");
        } else if (fs::exists(root / "model.safetensors.index.json")) {
            files = read_index(root / "model.safetensors.index.json");
        } else {
            throw Error(root.string(), ": has neither model.safetensors nor model.safetensors.index.json");
        }
        for (const auto& file : files)
            shards_.push_back(std::make_unique<io::SafetensorsReader>((root / file).string()));
        std::set<std::string> seen;
        for (const auto& shard : shards_)
            for (const io::SafetensorsTensor& t : shard->tensors()) {
                // save_pretrained of GPT2LMHeadModel prefixes the body's names with "transformer."
                std::string name = t.name;
                if (config_.family == model::Family::Gpt2 && name.starts_with("transformer."))
                    name = name.substr(std::strlen("transformer."));
                if (is_buffer_name(name)) continue;
                if (!seen.insert(name).second)
                    throw Error(shard->path(), ": tensor '", name, "' is also in another shard");
                tensors_.push_back({name, t.dtype, t.shape, t.data, shard->path(), false, {}});
            }
        if (index_.empty()) return;
        for (const auto& [name, file] : index_) {
            const SourceTensor* t = find(name);
            if (!t && !is_buffer_name(name))
                throw Error((root / "model.safetensors.index.json").string(), ": weight_map puts '",
                            name, "' in ", file, ", which has no such tensor");
        }
    }

    // The shard files of an index, each a plain file name in the model's directory.
    std::vector<std::string> read_index(const fs::path& path) {
        const nlohmann::json index = read_json(path);
        if (!index.is_object() || !index.contains("weight_map") || !index["weight_map"].is_object())
            throw Error(path.string(), ": weight_map is missing or not an object of tensor -> file");
        std::vector<std::string> files;
        for (const auto& [name, file] : index["weight_map"].items()) {
            if (!file.is_string())
                throw Error(path.string(), ": weight_map['", name, "'] is not a file name");
            const std::string f = file.get<std::string>();
            if (f.empty() || f.find('/') != std::string::npos || f.find('\\') != std::string::npos ||
                f == "." || f == "..")
                throw Error(path.string(), ": weight_map['", name, "'] is '", f,
                            "', not a plain file name beside the index");
            index_[name] = f;
            if (std::find(files.begin(), files.end(), f) == files.end()) files.push_back(f);
        }
        if (files.empty()) throw Error(path.string(), ": weight_map is empty");
        for (const auto& f : files)
            if (!fs::exists(path.parent_path() / f))
                throw Error(path.string(), ": names shard ", f, ", which is not in ",
                            path.parent_path().string(), " (an incomplete download?)");
        return files;
    }

    void read_generation_config(const fs::path& path) {
        const nlohmann::json g = read_json(path);
        if (!g.is_object()) throw Error(path.string(), ": expected a JSON object");
        const auto add = [&](const nlohmann::json& id) {
            if (!id.is_number_integer() || id.get<int64_t>() < 0 || id.get<int64_t>() >= config_.vocab_size)
                throw Error(path.string(), ": eos_token_id ", id.dump(), " is not a token id of the ",
                            config_.vocab_size, "-token vocabulary");
            generation_.stop_ids.push_back(id.get<int32_t>());
        };
        if (auto it = g.find("eos_token_id"); it != g.end() && !it->is_null()) {
            if (it->is_array()) {
                for (const auto& id : *it) add(id);
            } else {
                add(*it);
            }
        }
    }

    std::vector<std::unique_ptr<io::SafetensorsReader>> shards_;
    std::map<std::string, std::string> index_;
};

bool is_gguf_file(const std::string& path) {
    std::FILE* f = std::fopen(path.c_str(), "rb");
    if (!f) throw Error(path, ": cannot open: ", std::strerror(errno));
    char magic[4] = {};
    const size_t n = std::fread(magic, 1, 4, f);
    std::fclose(f);
    return n == 4 && std::memcmp(magic, "GGUF", 4) == 0;
}

}  // namespace

std::string_view format_name(ModelFormat format) {
    switch (format) {
        case ModelFormat::TandemCheckpoint: return "tandem checkpoint";
        case ModelFormat::HuggingFace: return "Hugging Face";
        case ModelFormat::Gguf: return "GGUF";
    }
    TANDEM_ASSERT(false, static_cast<int>(format));
}

std::unique_ptr<ModelSource> ModelSource::open(const std::string& path) {
    if (!fs::exists(path)) throw Error(path, ": no such file or directory");
    if (!fs::is_directory(path)) {
        if (is_gguf_file(path)) return open_gguf_source(path);
        throw Error(path, ": not a model (expected a .gguf file, a Hugging Face model directory, "
                    "or a tandem run or checkpoint directory)");
    }
    const fs::path dir(path);
    if (fs::exists(dir / "checkpoints"))
        return std::make_unique<HfSource>(io::resolve_checkpoint(path), ModelFormat::TandemCheckpoint);
    if (fs::exists(dir / "MANIFEST.json")) {
        // A checkpoint, or a model tandem exported (same manifest, no training state).
        io::verify_checkpoint_dir(path);
        return std::make_unique<HfSource>(path, fs::exists(dir / "state.json")
                                                    ? ModelFormat::TandemCheckpoint
                                                    : ModelFormat::HuggingFace);
    }
    if (fs::exists(dir / "config.json"))
        return std::make_unique<HfSource>(path, ModelFormat::HuggingFace);
    throw Error(path, ": not a model directory (no config.json, MANIFEST.json or checkpoints/)");
}

const SourceTensor* ModelSource::find(std::string_view name) const {
    for (const auto& t : tensors_)
        if (t.name == name) return &t;
    return nullptr;
}

DType ModelSource::main_dtype() const {
    std::map<DType, int64_t> values;
    for (const auto& t : tensors_)
        if (t.shape.size() == 2) {
            int64_t n = 1;
            for (int64_t d : t.shape) n *= d;
            values[t.dtype] += n;
        }
    DType best = DType::F32;
    int64_t most = -1;
    for (const auto& [dtype, n] : values)
        if (n > most) best = dtype, most = n;
    return best;
}

}  // namespace tandem::infer

// Writing Hugging Face directories for the loader's tests.
#include "common/hf_dir_util.h"

#include <filesystem>
#include <nlohmann/json.hpp>

#include "backend/registry.h"
#include "io/atomic_file.h"
#include "io/tokenizer_files.h"
#include "model/hf_config.h"

namespace tandem::testing {

io::BpeModel byte_tokenizer() {
    io::BpeModel m;
    for (int b = 0; b < 256; ++b) m.tokens.push_back(std::string(1, char(b)));
    m.added.push_back({"<|endoftext|>", 256, true});
    m.tokens.resize(257);
    return m;
}

HfDir write_hf_dir(const std::string& dir, const model::ModelConfig& c, DType dtype, int n_shards,
                   const std::string& prefix) {
    HfDir out{model::Weights(c, backend::get_backend("cpu"), DType::F32), {}, {}};
    out.weights.init(7);
    std::filesystem::create_directories(dir);
    io::write_file_atomic(dir + "/config.json", model::config_to_hf_json(c).dump());
    io::save_hf_tokenizer_json(byte_tokenizer(), dir + "/tokenizer.json");
    const auto& entries = out.weights.layout().entries();
    out.data.reserve(entries.size());
    nlohmann::json weight_map = nlohmann::json::object();
    std::vector<std::vector<io::SafetensorsTensor>> shards(n_shards);
    for (size_t i = 0; i < entries.size(); ++i) {
        const auto& e = entries[i];
        out.data.emplace_back(dtype_bytes(dtype, e.numel()));
        out.weights.get(e.name, out.data.back().data(), dtype);
        io::SafetensorsTensor t{prefix + e.name, dtype,
                                {e.shape.dims.begin(), e.shape.dims.begin() + e.shape.ndim},
                                out.data.back().data(), out.data.back().size()};
        const int shard = static_cast<int>(i * n_shards / entries.size());
        shards[shard].push_back(t);
        out.tensors.push_back(t);
        weight_map[prefix + e.name] = "model-0000" + std::to_string(shard + 1) + "-of-0000" +
                                      std::to_string(n_shards) + ".safetensors";
    }
    if (n_shards == 1) {
        io::save_safetensors(dir + "/model.safetensors", shards[0]);
        return out;
    }
    for (int s = 0; s < n_shards; ++s)
        io::save_safetensors(dir + "/model-0000" + std::to_string(s + 1) + "-of-0000" +
                                 std::to_string(n_shards) + ".safetensors",
                             shards[s]);
    io::write_file_atomic(dir + "/model.safetensors.index.json",
                          nlohmann::json{{"metadata", {{"total_size", 0}}}, {"weight_map", weight_map}}.dump());
    return out;
}

}  // namespace tandem::testing

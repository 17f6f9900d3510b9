// libFuzzer target for the files of a Hugging Face model directory: the input's first byte picks
// which file of a valid tiny model it replaces (config.json, model.safetensors.index.json,
// generation_config.json, tokenizer.json, tokenizer_config.json), the rest is that file's bytes;
// ModelSource::open must give a model or a tandem::Error, never a crash, a sanitizer report or an
// allocation out of proportion to the input.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "core/error.h"
#include "infer/model_source.h"
#include "io/atomic_file.h"
#include "io/safetensors.h"
#include "io/tokenizer_files.h"
#include "model/hf_config.h"
#include "model/param_layout.h"

namespace {

namespace fs = std::filesystem;

const char* kFiles[] = {"config.json", "model.safetensors.index.json", "generation_config.json",
                        "tokenizer.json", "tokenizer_config.json"};

std::string base_dir() {
    static const std::string dir = "/tmp/tandem_model_dir_fuzz_" + std::to_string(::getpid());
    return dir;
}

// A valid two-shard model directory: the fuzzer's input replaces one of its files.
void write_base(const std::string& dir) {
    fs::remove_all(dir);
    fs::create_directories(dir);
    tandem::model::ModelConfig c = tandem::model::preset_config("qwen3-tiny");
    c.n_layers = 1, c.vocab_size = 260, c.max_seq_len = 16;
    tandem::io::write_file_atomic(dir + "/config.json", tandem::model::config_to_hf_json(c).dump());
    const tandem::model::ParamLayout layout = tandem::model::make_layout(c);
    static std::vector<float> zeros(layout.n_params());
    std::vector<tandem::io::SafetensorsTensor> shards[2];
    nlohmann::json map = nlohmann::json::object();
    for (size_t i = 0; i < layout.entries().size(); ++i) {
        const auto& e = layout.entries()[i];
        const int s = i % 2;
        shards[s].push_back({e.name, tandem::DType::F32,
                             {e.shape.dims.begin(), e.shape.dims.begin() + e.shape.ndim},
                             zeros.data(), 0});
        map[e.name] = "model-0000" + std::to_string(s + 1) + "-of-00002.safetensors";
    }
    for (int s = 0; s < 2; ++s)
        tandem::io::save_safetensors(dir + "/model-0000" + std::to_string(s + 1) + "-of-00002.safetensors", shards[s]);
    tandem::io::write_file_atomic(dir + "/model.safetensors.index.json", nlohmann::json{{"weight_map", map}}.dump());
    tandem::io::write_file_atomic(dir + "/generation_config.json", R"({"eos_token_id": [256]})");
    tandem::io::BpeModel tok;
    for (int b = 0; b < 256; ++b) tok.tokens.push_back(std::string(1, char(b)));
    tok.added.push_back({"<|endoftext|>", 256, true});
    tok.tokens.resize(257);
    tandem::io::save_hf_tokenizer_json(tok, dir + "/tokenizer.json");
    tandem::io::write_file_atomic(dir + "/tokenizer_config.json", R"({"eos_token": "<|endoftext|>"})");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size == 0) return 0;
    const std::string dir = base_dir();
    static const bool written = (write_base(dir), true);
    (void)written;
    const std::string path = dir + "/" + kFiles[data[0] % std::size(kFiles)];
    const std::string original = tandem::io::read_file(path);
    std::ofstream(path, std::ios::binary | std::ios::trunc)
        .write(reinterpret_cast<const char*>(data + 1), size - 1);
    try {
        (void)tandem::infer::ModelSource::open(dir);
    } catch (const tandem::Error&) {
    }
    tandem::io::write_file_atomic(path, original);  // the next input starts from the valid model
    return 0;
}

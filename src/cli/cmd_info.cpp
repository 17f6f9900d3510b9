// `tandem info PATH`: what a run directory, a model (checkpoint, Hugging Face directory, .gguf
// file) or a token-shard directory holds, in a few aligned lines.
#include <cstdio>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "core/error.h"
#include "infer/model_source.h"
#include "io/atomic_file.h"
#include "io/json_fields.h"
#include "io/checkpoint_dir.h"
#include "model/config.h"
#include "train/metrics_log.h"

namespace tandem::cli {

namespace fs = std::filesystem;

namespace {

nlohmann::json read_json(const fs::path& path) {
    return io::parse_json_text(io::read_file(path.string()), path.string());
}

void row(const char* key, const std::string& value) { std::printf("  %-14s %s\n", key, value.c_str()); }

std::string with_commas(int64_t n) {
    std::string digits = std::to_string(n), out;
    for (size_t i = 0; i < digits.size(); ++i) {
        if (i && (digits.size() - i) % 3 == 0) out += ',';
        out += digits[i];
    }
    return out;
}

void describe_model(const std::string& path) {
    const auto source = infer::ModelSource::open(path);
    const model::ModelConfig& c = source->config();
    int64_t n_params = 0;
    for (const auto& t : source->tensors()) {
        int64_t n = 1;
        for (int64_t d : t.shape) n *= d;
        n_params += n;
    }
    const std::string kind = source->format() == infer::ModelFormat::TandemCheckpoint
                                 ? "checkpoint"
                                 : std::string(infer::format_name(source->format())) + " model";
    std::printf("%s %s\n", kind.c_str(), source->path().c_str());
    std::string family(model::family_name(c.family));
    if (c.qk_norm) family += " (qk-norm)";
    row("family", family);
    row("parameters", with_commas(n_params) + " stored as " + std::string(dtype_name(source->main_dtype())));
    row("sizes", "layers " + std::to_string(c.n_layers) + ", width " + std::to_string(c.d_model) + ", heads " +
                     std::to_string(c.n_heads) + "/" + std::to_string(c.n_heads_kv) + " kv, head dim " +
                     std::to_string(c.head_dim) + ", ffn " + std::to_string(c.d_ffn));
    row("vocabulary", with_commas(c.vocab_size));
    row("context", std::to_string(c.max_seq_len));
    const fs::path state_path = fs::path(source->path()) / "state.json";
    if (fs::is_directory(source->path()) && fs::exists(state_path)) {
        const nlohmann::json state = read_json(state_path);
        row("step", std::to_string(state.value("step", 0)));
        row("tokens seen", with_commas(state.value("tokens_seen", int64_t{0})));
        if (state.contains("val_loss")) row("val loss", std::to_string(state["val_loss"].get<double>()));
    }
    const io::BpeModel& tokenizer = source->tokenizer();
    std::string tok = "byte-level BPE, " + with_commas(int64_t(tokenizer.tokens.size())) + " tokens + " +
                      std::to_string(tokenizer.added.size()) + " added";
    if (!tokenizer.chat_template.empty()) tok += ", chat template";
    row("tokenizer", tok);
}

void describe_shards(const std::string& dir) {
    const nlohmann::json meta = read_json(fs::path(dir) / "meta.json");
    std::printf("token shards %s\n", dir.c_str());
    row("vocabulary", with_commas(meta.value("vocab_size", int64_t{0})));
    row("tokenizer", meta.value("tokenizer_source", std::string("?")));
    for (const char* split : {"train", "val"})
        row(split, with_commas(meta["n_tokens"].value(split, int64_t{0})) + " tokens, " +
                       with_commas(meta["n_documents"].value(split, int64_t{0})) + " documents");
    row("shards", std::to_string(meta.value("shards", nlohmann::json::array()).size()) + " (" +
                      std::to_string(meta.value("token_bytes", 0)) + "-byte tokens)");
    row("input", with_commas(meta.value("n_bytes", int64_t{0})) + " bytes of " + meta.value("input_format", std::string("text")));
}

void describe_run(const std::string& dir) {
    std::printf("run %s\n", dir.c_str());
    const nlohmann::json config = read_json(fs::path(dir) / "config.json");
    if (config.contains("data")) row("data", config["data"].get<std::string>());
    row("steps", std::to_string(config.value("steps", 0)) + " of batch " + std::to_string(config.value("batch_size", 0)) +
                     " x " + std::to_string(config.value("seq_len", 0)));
    const auto records = train::read_metrics((fs::path(dir) / "metrics.jsonl").string());
    if (!records.empty()) {
        row("last step", std::to_string(records.back().value("step", 0)));
        for (auto it = records.rbegin(); it != records.rend(); ++it)
            if (it->contains("val_loss")) {
                row("val loss", std::to_string((*it)["val_loss"].get<double>()) + " at step " +
                                    std::to_string(it->value("step", 0)));
                break;
            }
    }
    const auto checkpoints = io::list_checkpoints((fs::path(dir) / "checkpoints").string());
    row("checkpoints", std::to_string(checkpoints.size()));
    const auto newest = io::newest_valid_checkpoint((fs::path(dir) / "checkpoints").string());
    if (newest) {
        std::printf("\n");
        describe_model(newest->path);
    }
}

void run_info(const std::string& path) {
    if (fs::is_directory(path) && fs::exists(fs::path(path) / "meta.json")) return describe_shards(path);
    if (fs::is_directory(path) && (fs::exists(fs::path(path) / "checkpoints") || fs::exists(fs::path(path) / "metrics.jsonl")))
        return describe_run(path);
    describe_model(path);  // a checkpoint, a Hugging Face directory or a .gguf file
}

}  // namespace

void add_info_command(CLI::App& app) {
    auto path = std::make_shared<std::string>();
    CLI::App* cmd = app.add_subcommand(
        "info", "Describe a run, a checkpoint, a Hugging Face model, a .gguf file or token shards");
    cmd->add_option("path", *path, "the directory or file")->required();
    cmd->callback([path] { run_info(*path); });
}

}  // namespace tandem::cli

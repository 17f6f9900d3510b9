// Saving and restoring training checkpoints through safetensors and JSON files.
#include "train/checkpoint.h"

#include <filesystem>

#include "core/error.h"
#include "io/atomic_file.h"
#include "io/safetensors.h"
#include "model/hf_config.h"
#include "io/checkpoint_dir.h"

namespace tandem::train {

namespace fs = std::filesystem;

// Copies `t` into `out`, resized to fit (its memory is kept when the size is unchanged).
void copy_to_host_f32(backend::Backend& be, Tensor t, std::vector<float>& out) {
    out.resize(static_cast<size_t>(t.numel()));
    if (t.dtype == DType::F32) {
        be.copy_to_host(out.data(), t.data, t.bytes());
    } else {
        TANDEM_ASSERT(t.dtype == DType::F64, t.str());
        std::vector<double> wide(t.numel());
        be.copy_to_host(wide.data(), t.data, t.bytes());
        for (size_t i = 0; i < out.size(); ++i) out[i] = static_cast<float>(wide[i]);
    }
}

void from_host_f32(backend::Backend& be, Tensor t, const float* values) {
    if (t.dtype == DType::F32) {
        be.copy_to_device(t.data, values, t.bytes());
    } else {
        TANDEM_ASSERT(t.dtype == DType::F64, t.str());
        std::vector<double> wide(values, values + t.numel());
        be.copy_to_device(t.data, wide.data(), t.bytes());
    }
}

namespace {

std::string join(const std::string& dir, const char* name) { return (fs::path(dir) / name).string(); }

}  // namespace

void take_snapshot(CheckpointSnapshot& s, const model::Model& model, const AdamW& optimizer,
                   const TrainingState& state, const std::string& tokenizer_json) {
    s.state = state;
    s.optimizer_step = optimizer.step_count();
    s.model_config = model.config();
    s.entries = model.layout().entries();
    copy_to_host_f32(model.backend(), model.params(), s.params);
    copy_to_host_f32(model.backend(), optimizer.m(), s.exp_avg);
    copy_to_host_f32(model.backend(), optimizer.v(), s.exp_avg_sq);
    s.tokenizer_json = tokenizer_json;
}

CheckpointSnapshot take_snapshot(const model::Model& model, const AdamW& optimizer,
                                 const TrainingState& state, const std::string& tokenizer_json) {
    CheckpointSnapshot s;
    take_snapshot(s, model, optimizer, state, tokenizer_json);
    return s;
}

void restore_snapshot(const CheckpointSnapshot& snapshot, model::Model& model, AdamW& optimizer) {
    TANDEM_ASSERT(int64_t(snapshot.params.size()) == model.layout().n_params(), snapshot.params.size());
    from_host_f32(model.backend(), model.params(), snapshot.params.data());
    // The moments of the optimizer's range (as take_snapshot copies them), or the whole buffer's
    // (a ZeRO rank 0's snapshot, gathered for writing): then the range is taken from them.
    const int64_t n_moments = int64_t(snapshot.exp_avg.size());
    TANDEM_ASSERT(n_moments == optimizer.range().count || n_moments == optimizer.n_params_total(), n_moments);
    const int64_t begin = n_moments == optimizer.range().count ? 0 : optimizer.range().begin;
    from_host_f32(model.backend(), optimizer.m(), snapshot.exp_avg.data() + begin);
    from_host_f32(model.backend(), optimizer.v(), snapshot.exp_avg_sq.data() + begin);
    optimizer.set_step_count(snapshot.optimizer_step);
}

std::string write_checkpoint(const std::string& parent, const CheckpointSnapshot& snapshot,
                             const CheckpointFileHook& after_file) {
    const TrainingState& state = snapshot.state;
    io::CheckpointDirWriter writer(parent, state.step);
    const auto written = [&](const std::string& name) {
        if (after_file) after_file(name, state.step);
    };

    // Weights, by Hugging Face name in layout order.
    std::vector<io::SafetensorsTensor> tensors;
    for (const auto& entry : snapshot.entries) {
        std::vector<int64_t> shape(entry.shape.dims.begin(), entry.shape.dims.begin() + entry.shape.ndim);
        tensors.push_back({entry.name, DType::F32, shape, snapshot.params.data() + entry.offset,
                           static_cast<size_t>(entry.numel()) * 4});
    }
    writer.note_checksum("model.safetensors", io::save_safetensors(writer.file("model.safetensors"), tensors, {{"format", "pt"}},
                                                                  io::WriteMode::Direct));
    written("model.safetensors");

    // Optimizer moments over the whole flat buffer (a ZeRO snapshot has them gathered).
    TANDEM_ASSERT(snapshot.exp_avg.size() == snapshot.params.size(), snapshot.exp_avg.size(), snapshot.params.size());
    const auto n = static_cast<int64_t>(snapshot.exp_avg.size());
    std::vector<io::SafetensorsTensor> moments = {
        {"exp_avg", DType::F32, {n}, snapshot.exp_avg.data(), snapshot.exp_avg.size() * 4},
        {"exp_avg_sq", DType::F32, {n}, snapshot.exp_avg_sq.data(), snapshot.exp_avg_sq.size() * 4}};
    writer.note_checksum("optimizer.safetensors",
                         io::save_safetensors(writer.file("optimizer.safetensors"), moments,
                                              {{"step", std::to_string(snapshot.optimizer_step)}},
                                              io::WriteMode::Direct));
    written("optimizer.safetensors");

    writer.note_checksum("config.json", io::write_file_atomic(writer.file("config.json"),
                                                              model::config_to_hf_json(snapshot.model_config).dump(2) + "\n"));
    written("config.json");
    writer.note_checksum("tokenizer.json", io::write_file_atomic(writer.file("tokenizer.json"), snapshot.tokenizer_json));
    written("tokenizer.json");
    if (!snapshot.exchange.empty()) {
        std::vector<io::SafetensorsTensor> state;
        for (const NamedValues& t : snapshot.exchange)
            state.push_back({t.name, DType::F32, {static_cast<int64_t>(t.values.size())}, t.values.data(),
                             t.values.size() * 4});
        writer.note_checksum("exchange.safetensors",
                             io::save_safetensors(writer.file("exchange.safetensors"), state,
                                                  snapshot.exchange_settings, io::WriteMode::Direct));
        written("exchange.safetensors");
    }
    if (!snapshot.tokenizer_config_json.empty()) {
        writer.note_checksum("tokenizer_config.json", io::write_file_atomic(writer.file("tokenizer_config.json"),
                                                                            snapshot.tokenizer_config_json));
        written("tokenizer_config.json");
    }

    nlohmann::json json = {{"step", state.step},
                           {"data_cursor", {{"epoch", state.cursor.epoch}, {"position", state.cursor.position}}},
                           {"tokens_seen", state.tokens_seen},
                           {"optimizer_step", snapshot.optimizer_step},
                           {"model", model::config_to_json(snapshot.model_config)},
                           {"train_config", state.train_config},
                           {"anomaly_guard", state.anomaly_guard},
                           // Counter-based: every random draw is a function of this key and the
                           // step, so the key is the whole generator state.
                           {"rng", {{"generator", "philox4x32-10"}, {"seed", state.seed}}}};
    if (state.val_loss) json["val_loss"] = *state.val_loss;
    writer.note_checksum("state.json", io::write_file_atomic(writer.file("state.json"), json.dump(2) + "\n"));
    written("state.json");
    return writer.commit();
}

std::string save_checkpoint(const std::string& parent, const model::Model& model,
                            const AdamW& optimizer, const TrainingState& state,
                            const std::string& tokenizer_json) {
    return write_checkpoint(parent, take_snapshot(model, optimizer, state, tokenizer_json));
}

model::ModelConfig load_checkpoint_config(const std::string& dir) {
    const std::string path = join(dir, "config.json");
    nlohmann::json json;
    try {
        json = nlohmann::json::parse(io::read_file(path));
    } catch (const nlohmann::json::exception& e) {
        throw Error(path, ": not valid JSON: ", e.what());
    }
    try {
        return model::config_from_hf_json(json);
    } catch (const Error& e) {
        throw Error(path, ": ", e.what());
    }
}

void load_checkpoint_weights(const std::string& dir, model::Model& model) {
    io::SafetensorsReader reader(join(dir, "model.safetensors"));
    for (const auto& entry : model.layout().entries()) {
        std::vector<int64_t> shape(entry.shape.dims.begin(), entry.shape.dims.begin() + entry.shape.ndim);
        const auto& t = reader.get(entry.name, DType::F32, shape);
        model.load_param(entry.name, {static_cast<const float*>(t.data), static_cast<size_t>(t.numel())});
    }
}

TrainingState read_checkpoint_state(const std::string& dir) {
    const std::string path = join(dir, "state.json");
    try {
        const nlohmann::json json = nlohmann::json::parse(io::read_file(path));
        TrainingState state;
        state.step = json.at("step").get<int64_t>();
        state.cursor.epoch = json.at("data_cursor").at("epoch").get<uint64_t>();
        state.cursor.position = json.at("data_cursor").at("position").get<uint64_t>();
        state.tokens_seen = json.at("tokens_seen").get<int64_t>();
        if (json.contains("val_loss")) state.val_loss = json["val_loss"].get<double>();
        state.train_config = json.value("train_config", nlohmann::json::object());
        state.seed = json.at("rng").at("seed").get<uint64_t>();
        state.anomaly_guard = json.value("anomaly_guard", nlohmann::json::object());
        return state;
    } catch (const nlohmann::json::exception& e) {
        throw Error(path, ": malformed training state: ", e.what());
    }
}

TrainingState load_checkpoint_state(const std::string& dir, AdamW& optimizer) {
    TrainingState state = read_checkpoint_state(dir);
    io::SafetensorsReader reader(join(dir, "optimizer.safetensors"));
    // The file holds the whole moments, whatever the world size that wrote them; an optimizer
    // over one range (a ZeRO rank) takes its range.
    const int64_t n = optimizer.n_params_total(), begin = optimizer.range().begin;
    const auto& m = reader.get("exp_avg", DType::F32, {n});
    const auto& v = reader.get("exp_avg_sq", DType::F32, {n});
    backend::Backend& be = *optimizer.backend();
    from_host_f32(be, optimizer.m(), static_cast<const float*>(m.data) + begin);
    from_host_f32(be, optimizer.v(), static_cast<const float*>(v.data) + begin);
    const auto step = reader.metadata().find("step");
    if (step == reader.metadata().end()) throw Error(reader.path(), ": no optimizer step in the metadata");
    optimizer.set_step_count(std::stoll(step->second));
    return state;
}

}  // namespace tandem::train

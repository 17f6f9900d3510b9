// What a training checkpoint holds and how it is saved and restored. The directory
// (checkpoints/step-<N>/, atomic, with a manifest: checkpoint_dir.h) contains:
//   model.safetensors      parameters by Hugging Face name, f32
//   config.json            the Hugging Face config of the model
//   tokenizer.json         the tokenizer the data was prepared with
//   tokenizer_config.json  when the run has one (fine-tuning): the chat template, special tokens
//   optimizer.safetensors  AdamW's exp_avg and exp_avg_sq over the flat parameter buffer
//   exchange.safetensors   with compress= or local_steps= on several ranks: what the gradient
//                          exchange carries from step to step (train/grad_exchange.h)
//   state.json             step, data cursor, tokens seen, last validation loss, the training
//                          configuration and the random-number key
// Loading weights alone (generate, info) needs only the first three.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "model/config.h"
#include "model/model.h"
#include "train/adamw.h"
#include "train/data_loader.h"

namespace tandem::train {

// A flat f32 array by name, on the host.
struct NamedValues {
    std::string name;
    std::vector<float> values;
};

struct TrainingState {
    int64_t step = 0;
    DataCursor cursor;
    int64_t tokens_seen = 0;
    std::optional<double> val_loss;
    nlohmann::json train_config;  // TrainConfig::to_json() of the run
    uint64_t seed = 0;
    nlohmann::json anomaly_guard = nlohmann::json::object();  // AnomalyGuard::to_json()
};

// A tensor of the backend (f32 or f64) to host f32 and back; `out` keeps its memory when the
// size is unchanged.
void copy_to_host_f32(backend::Backend& be, Tensor t, std::vector<float>& out);
void from_host_f32(backend::Backend& be, Tensor t, const float* values);

// Everything a checkpoint holds, copied to host memory: taking one is the only part of saving
// that stops training; writing it can run on another thread, and restoring it rolls training
// back without reading the disk.
struct CheckpointSnapshot {
    TrainingState state;
    int64_t optimizer_step = 0;
    model::ModelConfig model_config;
    std::vector<model::ParamEntry> entries;  // the layout: names, shapes, offsets into `params`
    std::vector<float> params;               // flat, f32, each tensor in Hugging Face layout
    std::vector<float> exp_avg, exp_avg_sq;  // flat, the optimizer's range (whole to be written)
    std::string tokenizer_json;
    std::string tokenizer_config_json;  // "": none written
    // The gradient exchange's state (GradientExchange::save), and the settings it belongs to;
    // empty without one. Written as exchange.safetensors.
    std::vector<NamedValues> exchange;
    std::map<std::string, std::string> exchange_settings;
};

// Fills `into`, reusing its memory: a snapshot taken into the same buffers again is a plain copy
// (0.03 s for 124M parameters here), while filling fresh memory costs a page fault per 4 KiB
// (1.6 s for the same copy on these VMs).
void take_snapshot(CheckpointSnapshot& into, const model::Model& model, const AdamW& optimizer,
                   const TrainingState& state, const std::string& tokenizer_json);
CheckpointSnapshot take_snapshot(const model::Model& model, const AdamW& optimizer,
                                 const TrainingState& state, const std::string& tokenizer_json);
// Puts the snapshot's weights and optimizer state back into `model` and `optimizer` (the
// snapshot's moments may be the whole buffer's or just the optimizer's range).
void restore_snapshot(const CheckpointSnapshot& snapshot, model::Model& model, AdamW& optimizer);

// Called after each file of a checkpoint is written, before the directory is committed (fault
// injection makes a write fail or the process die there).
using CheckpointFileHook = std::function<void(const std::string& name, int64_t step)>;

// Writes `snapshot` under `parent` as step-<step> (atomic, with a manifest) and returns its path.
std::string write_checkpoint(const std::string& parent, const CheckpointSnapshot& snapshot,
                             const CheckpointFileHook& after_file = {});

// take_snapshot, then write_checkpoint.
std::string save_checkpoint(const std::string& parent, const model::Model& model,
                            const AdamW& optimizer, const TrainingState& state,
                            const std::string& tokenizer_json);

// The model configuration of a checkpoint directory (from its config.json).
model::ModelConfig load_checkpoint_config(const std::string& dir);
// Copies model.safetensors into `model`, checking every tensor's presence, dtype and shape.
void load_checkpoint_weights(const std::string& dir, model::Model& model);
// Restores optimizer moments (its range of the checkpoint's whole ones) and step count, and
// returns the training state.
TrainingState load_checkpoint_state(const std::string& dir, AdamW& optimizer);
TrainingState read_checkpoint_state(const std::string& dir);  // state.json only

}  // namespace tandem::train

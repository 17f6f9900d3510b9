// How a training step's gradients cross the links between ranks, from the configuration: the
// plain all-reduce (compress=none, local_steps=1: exactly what TrainStep did before), a
// compressed all-reduce with error feedback (compress=bf16|int8|powersgd:R), or none between
// the synchronisations of local steps (local_steps=H: DiLoCo's outer step, its outer gradient
// compressed too when compress is set). The codecs and the outer optimiser live in dist/; this
// file decides which one a run uses and when the outer step runs, and carries what they keep
// from step to step through checkpoints, so that such a run resumes bitwise too.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "dist/communicator.h"
#include "dist/compression.h"
#include "dist/local_sgd.h"
#include "model/model.h"
#include "train/adamw.h"
#include "train/checkpoint.h"
#include "train/train_config.h"

namespace tandem::train {

class GradientExchange {
public:
    // Collective when local steps are on (the outer optimiser takes rank 0's parameters as its
    // anchor): construct it on every rank after the parameters are loaded and broadcast. With
    // one rank there is no link: compression and local steps are off and is_active() is false.
    GradientExchange(const TrainConfig& cfg, model::Model& model, dist::Communicator& comm);
    ~GradientExchange();

    // Whether the configuration changed anything from the plain all-reduce.
    bool is_active() const { return compressor_ || outer_; }
    // Gradients stay on their rank between synchronisations (local steps).
    bool is_local() const { return outer_ != nullptr; }
    // grads f32[n_params] host, this rank's in, the sum over ranks out (bitwise the same on
    // every rank). Returns the sum of its squares where the exchange computed it on the way
    // (PowerSGD), so that the step need not read the gradient again for its norm. Not called
    // when is_local().
    std::optional<double> reduce(Tensor grads);
    // Whether reduce() left the matrices' part of the sum as PowerSGD's factors, not in grads:
    // output_pieces() then hands it to AdamW piece by piece, write_output() writes it out. Both
    // are valid until the next reduce().
    bool output_is_deferred() const { return compressor_ && compressor_->output_is_deferred(); }
    AdamW::GradientPieces output_pieces(Tensor grads) const;
    void write_output(Tensor grads) const;
    // After step `step` was taken (applied or skipped): the outer step when step is a multiple
    // of local_steps or `must_sync` (the trainer evaluates, checkpoints or ends after it).
    // Returns whether it synchronised. A no-op without local steps.
    bool after_step(int64_t step, bool must_sync);
    // One line for the log: "compress=int8, local_steps=8 (outer lr 0.7, momentum 0.9)".
    std::string describe() const;

    // What carries over from step to step besides the weights and AdamW's moments: the
    // error-feedback residual, PowerSGD's Q, the outer anchor and momentum. Collective when
    // active (every rank calls it at the same checkpoint): `into` (nullptr: not kept here)
    // receives this rank's state by name and its settings; on rank 0 also every other rank's
    // own part, which differs between ranks (the residual and, with local steps, AdamW's
    // moments), as "rank<r>.<name>". A no-op when not active.
    void save(CheckpointSnapshot* into, const AdamW& optimizer);
    // Back to the state save() put in `from` (a rollback); afresh where `from` holds none.
    void restore(const CheckpointSnapshot& from);
    // On resume from checkpoint `dir` (after its weights and moments are loaded): this rank's
    // state from its exchange.safetensors, and its own AdamW moments with local steps. Returns ""
    // when restored (or neither the checkpoint nor this run has such state), else a warning:
    // the file is missing or was written for another world size or settings, so the state
    // starts afresh; or this run does not use the file's state.
    std::string load(const std::string& dir, AdamW& optimizer);

private:
    // This rank's state as views into the codec's and the outer optimiser's own buffers.
    std::vector<std::pair<std::string, Tensor>> state_views();
    // The parts that differ between ranks ("residual", and with local steps "exp_avg",
    // "exp_avg_sq"), as views of this rank's own buffers: no copy is made to send them.
    std::vector<std::pair<std::string, Tensor>> own_parts(const AdamW& optimizer);
    std::map<std::string, std::string> settings() const;
    void start_afresh();

    const TrainConfig& cfg_;
    model::Model& model_;
    dist::Communicator& comm_;
    std::unique_ptr<dist::GradientCompressor> compressor_;
    std::unique_ptr<dist::OuterOptimizer> outer_;
};

}  // namespace tandem::train

// One optimizer step, written once for pre-training, fine-tuning, RL and data parallel: n_micro
// micro-batches from a BatchSource through forward and backward, the sums that must agree across
// ranks reduced through a dist::Communicator, the anomaly guard's verdict on the reduced loss
// and gradient norm, then clipping and AdamW (or, with ZeRO-1, zero_optimizer.h: the gradient
// reduce-scattered, each rank's range updated, the weights all-gathered). The step's loss is sum(w_i * loss_i) / sum(w_i)
// over every target of every micro-batch on every rank, and its gradient is that mean's. Each
// micro-batch's gradient is computed from zero and added to the earlier ones' in order, in f32,
// as the communicator adds the ranks' (dist/host_reduce.h): N ranks with grad_accum 1 and one rank
// with grad_accum N (the same rows in the same order) give the same bits.
// Schedules, policies after an anomaly, checkpoints and metrics stay with the caller (trainer).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "dist/communicator.h"
#include "model/model.h"
#include "train/adamw.h"
#include "train/anomaly_guard.h"
#include "train/batch_source.h"
#include "train/grad_exchange.h"
#include "train/zero_optimizer.h"

namespace tandem::train {

struct StepResult {
    double loss = 0;         // sum(w_i * loss_i) / sum(w_i) over the step, the same on every rank
    double grad_norm = 0;    // global L2 norm of the step's gradient, before clipping
    double loss_weight = 0;  // sum(w_i) over the step and every rank: its targets, unweighted
    int64_t n_tokens = 0;    // input positions the step read, over every rank
    std::optional<std::string> anomaly;  // the guard's reason; set: nothing was applied
};

struct StepHooks {
    // After the gradients and the loss are reduced, before they are judged (fault injection,
    // watchdog beats): may change the loss, and the gradients through TrainStep::gradients().
    std::function<void(double& loss)> after_backward;
    // After the forward of micro-batch `micro`, before its backward: may give the model new
    // per-token weights (Model::set_loss_weights; policy gradients make some negative) and
    // returns what the micro-batch adds to the step's sum(w_i * loss_i) in place of its weighted
    // cross-entropy (GRPO's surrogate, rl/grpo_loss.h).
    std::function<double(int64_t micro, const Batch& batch)> before_backward = {};
};

class TrainStep {
public:
    // n_micro: micro-batches per step (gradient accumulation). The references must outlive the
    // step; the step allocates its host batches once, on the first run. With `zero` (ZeRO-1),
    // `optimizer` is the AdamW of this rank's range that `zero` drives.
    TrainStep(model::Model& model, AdamW& optimizer, AnomalyGuard& guard, dist::Communicator& comm,
              int64_t n_micro, ZeroAdamW* zero = nullptr);

    // One step. A normal one is applied with learning rate lr and accepted by the guard. On an
    // anomaly, the weights, the optimizer and the guard are unchanged (the caller's policy
    // decides) and the step's gradient stays for apply().
    StepResult run(BatchSource& source, double lr, const StepHooks& hooks = {});
    // The step's reduced gradient, in model.grads(): written out first where the exchange left it
    // as factors (PowerSGD's estimate goes to the update piece by piece, never whole, unless
    // something asks for it here, as fault injection does).
    Tensor gradients();
    // Applies the update of a step the guard rejected, its gradient clipped as usual; the guard's
    // window does not take its values.
    void apply(const StepResult& result, double lr);
    // Gradients then cross the ranks through `exchange` (compressed, or not at all between the
    // synchronisations of local steps) instead of the plain all-reduce. It must outlive the step.
    void set_exchange(GradientExchange* exchange) { exchange_ = exchange; }

private:
    // Every rank's sum of `values`, in place (a no-op with one rank).
    void all_reduce(std::span<double> values);
    // The optimizer's update of the reduced gradient, through ZeRO when it shards the state.
    void update(double lr, double grad_norm);

    // Before micro-batch i > 0's backward: the sum of the earlier ones moves to earlier_ and the
    // model's gradient starts from zero. add_earlier then adds it back, over a range or all.
    void set_earlier_aside();
    void add_earlier(int64_t begin, int64_t count);

    model::Model& model_;
    AdamW& optimizer_;
    AnomalyGuard& guard_;
    dist::Communicator& comm_;
    int64_t n_micro_;
    ZeroAdamW* zero_;
    std::vector<Batch> batches_;
    backend::Buffer earlier_;  // with n_micro > 1: the gradient of the micro-batches before this one
    GradientExchange* exchange_ = nullptr;
    // Local steps: the norm of this rank's own gradient, which clips its own update (the
    // result's grad_norm is the ranks' root mean square, which the guard judges).
    double local_norm_ = 0;
    // The exchange left the step's gradient as factors (GradientExchange::output_pieces), and
    // the sum of its squares.
    bool output_deferred_ = false;
    std::optional<double> exchanged_squares_;
};

}  // namespace tandem::train

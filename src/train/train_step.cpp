// The training step: read the micro-batches, agree on the step's loss weight, forward and
// backward with the gradient of the step's mean, reduce, judge, update.
#include "train/train_step.h"

#include <array>

#include "core/error.h"

namespace tandem::train {

TrainStep::TrainStep(model::Model& model, AdamW& optimizer, AnomalyGuard& guard,
                     dist::Communicator& comm, int64_t n_micro)
    : model_(model), optimizer_(optimizer), guard_(guard), comm_(comm), n_micro_(n_micro) {
    if (n_micro < 1) throw Error("grad_accum ", n_micro, " must be at least 1");
}

void TrainStep::all_reduce(std::span<double> values) {
    comm_.all_reduce(Tensor(values.data(), DType::F64, {int64_t(values.size())}));
}

StepResult TrainStep::run(BatchSource& source, double lr, const StepHooks& hooks) {
    StepResult result;
    // The whole step's weight is known from the host batches before any compute, so every
    // backward takes the gradient of the step's mean directly: no rescaling pass afterwards, and
    // micro-batches (and ranks) with more weighted tokens count for more, as they should.
    batches_.resize(n_micro_);
    std::array<double, 2> totals = {0, 0};  // loss weight, input positions
    for (Batch& batch : batches_) {
        source.next(batch);
        totals[0] += model::loss_weight_sum(batch.targets, batch.loss_weights);
        totals[1] += double(batch.B * batch.T);
    }
    all_reduce(totals);
    result.loss_weight = totals[0];
    result.n_tokens = int64_t(totals[1]);
    const double dloss = result.loss_weight > 0 ? 1.0 / result.loss_weight : 0.0;

    model_.zero_grad();
    std::array<double, 1> loss_sum = {0};
    for (size_t i = 0; i < batches_.size(); ++i) {
        const Batch& batch = batches_[i];
        model_.forward(batch.tokens, batch.targets, batch.B, batch.T, model::kIgnoreIndex,
                       batch.loss_weights);
        loss_sum[0] += hooks.before_backward ? hooks.before_backward(int64_t(i), batch) : model_.loss_sum();
        model_.backward(dloss);
    }
    // Sums over ranks, in the communicator's fixed order: every rank then holds the same
    // gradient and loss, and computes the same norm, so the guard decides the same everywhere.
    comm_.all_reduce(model_.grads());
    all_reduce(loss_sum);
    result.loss = result.loss_weight > 0 ? loss_sum[0] / result.loss_weight : 0.0;
    if (hooks.after_backward) hooks.after_backward(result.loss);

    result.grad_norm = optimizer_.grad_norm(model_.grads());
    result.anomaly = guard_.check(result.loss, result.grad_norm);
    if (result.anomaly) return result;
    optimizer_.update(model_.params(), model_.grads(), float(lr), result.grad_norm);
    guard_.accept(result.loss, result.grad_norm);
    return result;
}

void TrainStep::apply(const StepResult& result, double lr) {
    optimizer_.update(model_.params(), model_.grads(), float(lr), result.grad_norm);
}

}  // namespace tandem::train

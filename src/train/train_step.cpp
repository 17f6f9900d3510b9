// The training step: read the micro-batches, agree on the step's loss weight, forward and
// backward with the gradient of the step's mean, reduce, judge, update.
#include "train/train_step.h"

#include <array>
#include <cmath>
#include <optional>

#include "core/error.h"

namespace tandem::train {

TrainStep::TrainStep(model::Model& model, AdamW& optimizer, AnomalyGuard& guard,
                     dist::Communicator& comm, int64_t n_micro, ZeroAdamW* zero)
    : model_(model), optimizer_(optimizer), guard_(guard), comm_(comm), n_micro_(n_micro), zero_(zero) {
    if (n_micro < 1) throw Error("grad_accum ", n_micro, " must be at least 1");
}

void TrainStep::all_reduce(std::span<double> values) {
    comm_.all_reduce(Tensor(values.data(), DType::F64, {int64_t(values.size())}));
}

StepResult TrainStep::run(BatchSource& source, double lr, const StepHooks& hooks) {
    StepResult result;
    // Local steps: each rank follows the gradient of its own mean, and only the loss, the
    // counts and the norms cross the link (a few doubles).
    const bool is_local = exchange_ && exchange_->is_local();
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
    if (!is_local) all_reduce(totals);
    const double dloss = totals[0] > 0 ? 1.0 / totals[0] : 0.0;

    model_.zero_grad();
    // The plain all-reduce runs in buckets, each started as the last micro-batch's backward pass
    // finishes its range (a block, the head, the embeddings), while the rest of the pass runs.
    // The sum of every element is the same rank-order sum as over the whole buffer, so the bits
    // are too.
    const bool is_bucketed = !is_local && !zero_ && !exchange_ && comm_.size() > 1;
    std::vector<std::unique_ptr<dist::PendingCollective>> buckets;
    const auto start_bucket = [&](int64_t begin, int64_t count) {
        if (count == 0) return;
        model_.backend().synchronize();
        buckets.push_back(comm_.start_all_reduce(model_.grads().slice(begin, count)));
    };
    std::array<double, 3> loss_sum = {0, totals[0], totals[1]};  // the last two: local steps only
    for (size_t i = 0; i < batches_.size(); ++i) {
        const Batch& batch = batches_[i];
        model_.forward(batch.tokens, batch.targets, batch.B, batch.T, model::kIgnoreIndex,
                       batch.loss_weights);
        loss_sum[0] += hooks.before_backward ? hooks.before_backward(int64_t(i), batch) : model_.loss_sum();
        const bool is_last = i + 1 == batches_.size(), has_earlier = i > 0;
        if (has_earlier) set_earlier_aside();
        if (is_bucketed && is_last) {
            // Each range is whole once the earlier micro-batches' part is added back.
            model_.backward(dloss, [&](int64_t begin, int64_t count) {
                if (has_earlier) add_earlier(begin, count);
                start_bucket(begin, count);
            });
        } else {
            model_.backward(dloss);
            if (has_earlier) add_earlier(0, model_.grads().numel());
        }
    }
    // Sums over ranks, in the communicator's fixed order: every rank then holds the same
    // gradient and loss, and computes the same norm, so the guard decides the same everywhere.
    output_deferred_ = false;
    exchanged_squares_.reset();
    if (is_local) {
        all_reduce(loss_sum);
        totals = {loss_sum[1], loss_sum[2]};
    } else {
        if (zero_) zero_->reduce_gradients(model_.grads());  // each rank's range only
        else if (exchange_) {
            exchanged_squares_ = exchange_->reduce(model_.grads());
            output_deferred_ = exchange_->output_is_deferred();
        }
        for (auto& bucket : buckets) bucket->wait();
        all_reduce(std::span(loss_sum).first(1));
    }
    result.loss_weight = totals[0];
    result.n_tokens = int64_t(totals[1]);
    result.loss = result.loss_weight > 0 ? loss_sum[0] / result.loss_weight : 0.0;
    if (hooks.after_backward) hooks.after_backward(result.loss);

    result.grad_norm = zero_                ? zero_->grad_norm(model_.grads())
                       : exchanged_squares_ ? std::sqrt(*exchanged_squares_)
                                            : optimizer_.grad_norm(gradients());
    local_norm_ = result.grad_norm;
    if (is_local) {  // the guard must judge the same value on every rank
        std::array<double, 1> squares = {result.grad_norm * result.grad_norm};
        all_reduce(squares);
        result.grad_norm = std::sqrt(squares[0] / double(comm_.size()));
    }
    result.anomaly = guard_.check(result.loss, result.grad_norm);
    if (result.anomaly) return result;
    update(lr, local_norm_);
    guard_.accept(result.loss, result.grad_norm);
    return result;
}

void TrainStep::set_earlier_aside() {
    const Tensor grads = model_.grads();
    if (!earlier_.data()) earlier_ = backend::Buffer(model_.backend(), grads.bytes());
    model_.backend().copy(earlier_.data(), grads.data, grads.bytes());
    model_.zero_grad();
}

void TrainStep::add_earlier(int64_t begin, int64_t count) {
    if (count == 0) return;
    const Tensor grads = model_.grads().slice(begin, count);
    const Tensor earlier = earlier_.tensor(grads.dtype, {model_.grads().numel()}).slice(begin, count);
    model_.backend().add(grads, earlier, grads);
}

void TrainStep::apply(const StepResult& result, double lr) {
    const bool is_local = exchange_ && exchange_->is_local();
    update(lr, is_local ? local_norm_ : result.grad_norm);
}

void TrainStep::update(double lr, double grad_norm) {
    if (zero_) zero_->update(model_.params(), model_.grads(), float(lr), grad_norm);
    else if (output_deferred_)
        optimizer_.update(model_.params(), exchange_->output_pieces(model_.grads()), float(lr),
                          grad_norm);
    else optimizer_.update(model_.params(), model_.grads(), float(lr), grad_norm);
}

Tensor TrainStep::gradients() {
    if (output_deferred_) {
        exchange_->write_output(model_.grads());
        output_deferred_ = false;
        exchanged_squares_.reset();  // whoever asked may change them
    }
    return model_.grads();
}

}  // namespace tandem::train

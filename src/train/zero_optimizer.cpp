// ZeRO-1: the shard arithmetic, and the collectives around the AdamW of one rank's range.
#include "train/zero_optimizer.h"

#include <cmath>

#include "core/error.h"

namespace tandem::train {

ParamRange zero_shard(int64_t n, int rank, int n_ranks) {
    TANDEM_ASSERT(n >= 0 && n_ranks >= 1 && rank >= 0 && rank < n_ranks, n, rank, n_ranks);
    const int64_t q = n / n_ranks;
    const int64_t begin = rank * q;
    return {begin, rank == n_ranks - 1 ? n - begin : q};
}

ZeroAdamW::ZeroAdamW(AdamW& shard, dist::Communicator& comm)
    : shard_(shard),
      comm_(comm),
      n_(shard.n_params_total()),
      q_(n_ / comm.size()),
      n_tail_(n_ - comm.size() * q_) {
    const ParamRange want = zero_shard(n_, comm.rank(), comm.size());
    TANDEM_ASSERT(shard.range().begin == want.begin && shard.range().count == want.count,
                  shard.range().begin, shard.range().count, want.begin, want.count);
    if (shard.m().dtype != DType::F32)
        throw Error("zero=1: the sharded optimizer moves f32 moments, but they are ",
                    dtype_name(shard.m().dtype), " here (train an f32 model, or set zero=0)");
}

size_t ZeroAdamW::state_bytes_unsharded() const {
    return 2 * static_cast<size_t>(n_) * dtype_size(shard_.m().dtype);
}

void ZeroAdamW::reduce_gradients(Tensor grads) {
    TANDEM_ASSERT(grads.numel() == n_, grads.numel(), n_);
    const int size = comm_.size();
    if (size == 1) return;
    // In place: this rank's part of grads is both its input slot and the output.
    if (q_ > 0) comm_.reduce_scatter(grads.slice(comm_.rank() * q_, q_), grads.slice(0, size * q_));
    // Fewer elements than ranks: summed everywhere, read by the last rank, their owner.
    if (n_tail_ > 0) comm_.all_reduce(grads.slice(size * q_, n_tail_));
}

double ZeroAdamW::grad_norm(Tensor grads) {
    TANDEM_ASSERT(grads.numel() == n_, grads.numel(), n_);
    const ParamRange r = shard_.range();
    // Summed by range, then over ranks: the same value on every rank, but not the bits of one
    // sum over the whole buffer (the order differs). It only scales the update through
    // float(clip coefficient), and feeds the anomaly guard's comparisons.
    double sum_squares = r.count > 0 ? shard_.backend()->sum_squares(grads.slice(r.begin, r.count)) : 0.0;
    comm_.all_reduce(Tensor(&sum_squares, DType::F64, {1}));
    return std::sqrt(sum_squares);
}

void ZeroAdamW::update(Tensor params, Tensor grads, float lr, double grad_norm) {
    TANDEM_ASSERT(params.numel() == n_ && grads.numel() == n_, params.numel(), grads.numel(), n_);
    const ParamRange r = shard_.range();
    shard_.update(params.slice(r.begin, r.count), grads.slice(r.begin, r.count), lr, grad_norm);
    const int size = comm_.size();
    if (size == 1) return;
    if (q_ > 0) comm_.all_gather(params.slice(0, size * q_), params.slice(comm_.rank() * q_, q_));
    if (n_tail_ > 0) comm_.broadcast(params.slice(size * q_, n_tail_), size - 1);
}

void ZeroAdamW::gather_moments(std::vector<float>* exp_avg, std::vector<float>* exp_avg_sq) {
    const int size = comm_.size(), rank = comm_.rank();
    const bool is_root = rank == 0;
    TANDEM_ASSERT(!is_root || (exp_avg && exp_avg_sq), rank);
    std::vector<float>* whole[2] = {exp_avg, exp_avg_sq};
    const Tensor mine[2] = {shard_.m(), shard_.v()};
    if (is_root) {
        const ParamRange r = shard_.range();
        for (int k = 0; k < 2; ++k) {
            whole[k]->resize(static_cast<size_t>(n_));
            shard_.backend()->copy_to_host(whole[k]->data() + r.begin, mine[k].data, mine[k].bytes());
        }
    }
    // One broadcast per range from its owner: a gather to rank 0 out of the collectives the
    // communicators have. With more than two ranks the others receive a range they drop; this
    // runs once per checkpoint, and their memory stays at one range.
    std::vector<float> dropped;
    for (int owner = 1; owner < size; ++owner) {
        const ParamRange r = zero_shard(n_, owner, size);
        if (r.count == 0) continue;
        for (int k = 0; k < 2; ++k) {
            Tensor x;
            if (is_root) {
                x = Tensor(whole[k]->data() + r.begin, DType::F32, {r.count});
            } else if (rank == owner) {
                x = mine[k];
            } else {
                dropped.resize(static_cast<size_t>(r.count));
                x = Tensor(dropped.data(), DType::F32, {r.count});
            }
            comm_.broadcast(x, owner);
        }
    }
}

}  // namespace tandem::train

// ZeRO stage 1 (Rajbhandari et al. 2020), the `zero=1` training key: AdamW's m and v sharded
// across the data-parallel ranks. Each rank keeps the moments of one contiguous range of the flat
// parameter buffer; the gradient is reduce-scattered instead of all-reduced, each rank updates
// its range, and the updated weights are all-gathered. The AdamW over the range is the caller's
// (adamw.h with a ParamRange); checkpoints still hold the whole moments (gather_moments).
#pragma once

#include <cstdint>
#include <vector>

#include "dist/communicator.h"
#include "train/adamw.h"

namespace tandem::train {

// The range of n elements that `rank` of n_ranks owns: [r * q, (r + 1) * q) with q = n / n_ranks,
// and the last rank also owns the n % n_ranks elements after n_ranks * q. Equal ranges for the
// collectives that need them (reduce_scatter, all_gather); the leftover few travel separately.
ParamRange zero_shard(int64_t n, int rank, int n_ranks);

class ZeroAdamW {
public:
    // `shard` must own zero_shard(n_params, comm.rank(), comm.size()) of an f32 layout; both must
    // outlive this object. Every method but the two byte counts is collective.
    ZeroAdamW(AdamW& shard, dist::Communicator& comm);

    // grads f32[n_params], each rank's own: afterwards this rank's range of grads holds the sum
    // over ranks, bitwise what all_reduce would give there (the same fixed order); the rest of
    // grads is left as it was, stale.
    void reduce_gradients(Tensor grads);
    // The L2 norm of the whole reduced gradient: every range's sum of squares, summed over the
    // ranks in rank order, so every rank gets the same value.
    double grad_norm(Tensor grads);
    // This rank's range of params updated (AdamW over its range of grads, m and v), then every
    // range sent to every rank: params f32[n_params] leave the same on every rank.
    void update(Tensor params, Tensor grads, float lr, double grad_norm);

    // The whole moments f32[n_params] into exp_avg and exp_avg_sq on rank 0 (each rank's range
    // from its owner); the other ranks pass nullptr and only send.
    void gather_moments(std::vector<float>* exp_avg, std::vector<float>* exp_avg_sq);

    // m and v bytes this rank holds, and what one unsharded AdamW holds.
    size_t state_bytes() const { return shard_.state_bytes(); }
    size_t state_bytes_unsharded() const;

private:
    AdamW& shard_;
    dist::Communicator& comm_;
    int64_t n_;      // elements of the flat buffer
    int64_t q_;      // elements of each rank's equal part
    int64_t n_tail_; // n - size * q: the last rank's extra elements
};

}  // namespace tandem::train

// The collectives data-parallel training needs, over whatever connects the ranks: one process
// (LocalCommunicator, below), Open MPI (dist/mpi_communicator.h), later NCCL. Buffers are
// Tensors so that a GPU implementation can take device memory; the host implementations take
// host tensors. Every rank calls every collective in the same order with the same shapes.
// Results are bitwise reproducible for a given world size: reductions run in a fixed order.
#pragma once

#include <cstdint>
#include <memory>

#include "core/tensor.h"

namespace tandem::dist {

enum class ReduceOp { Sum, Max };

// A collective in flight. Its buffer belongs to the communicator until wait() returns; wait()
// throws Error when the collective failed (a peer that never came, a mismatched size).
class PendingCollective {
public:
    virtual ~PendingCollective() = default;
    virtual void wait() = 0;
};

class Communicator {
public:
    virtual ~Communicator() = default;
    virtual int rank() const = 0;
    virtual int size() const = 0;

    // x = op over ranks of x, in place, on every rank.
    virtual void all_reduce(Tensor x, ReduceOp op = ReduceOp::Sum) = 0;
    // in [size * n] on every rank; out [n] on rank r = sum over ranks of in[r * n, (r + 1) * n).
    virtual void reduce_scatter(Tensor out, Tensor in) = 0;
    // in [n] on every rank; out [size * n] = the ranks' inputs in rank order.
    virtual void all_gather(Tensor out, Tensor in) = 0;
    // x = root's x on every rank.
    virtual void broadcast(Tensor x, int root) = 0;
    virtual void barrier() = 0;

    // all_reduce started now and finished by wait(), so that a gradient bucket is reduced while
    // the backward pass computes the next one. Started collectives run in the order started,
    // before any collective called after them. This default finishes it at once.
    virtual std::unique_ptr<PendingCollective> start_all_reduce(Tensor x, ReduceOp op = ReduceOp::Sum);
    // Bytes this rank has put on the wire so far (0 for one process): the slow-link accounting.
    virtual uint64_t bytes_sent() const { return 0; }
};

// One process: every collective is the identity (reduce_scatter and all_gather copy).
class LocalCommunicator final : public Communicator {
public:
    int rank() const override { return 0; }
    int size() const override { return 1; }
    void all_reduce(Tensor, ReduceOp = ReduceOp::Sum) override {}
    void reduce_scatter(Tensor out, Tensor in) override;
    void all_gather(Tensor out, Tensor in) override;
    void broadcast(Tensor, int) override {}
    void barrier() override {}
};

}  // namespace tandem::dist

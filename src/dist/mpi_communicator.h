// The communicator over Open MPI: one rank per process started by `mpirun`. Sums run in a
// fixed order (each chunk is summed in rank order on its owner, then gathered), never through
// MPI's own reductions, whose algorithm choice varies with message size and world; and every
// wait polls against a deadline, so a peer that dies or hangs ends in an Error, not a hang.
#pragma once

#include <memory>

#include "dist/communicator.h"

namespace tandem::dist {

struct MpiOptions {
    // The longest a collective may wait for its peers. A peer that is merely slower (rank 0
    // writing a checkpoint) must stay under it.
    double deadline_seconds = 30.0;
};

// Whether a collective of this process failed (a peer died, hung or sent garbage). The job cannot
// go on, but a restart of the whole job from its checkpoint can: the CLI exits with a code of
// its own then, which a supervisor restarts (cli/supervisor.h).
bool collective_failed();

// Whether mpirun started this process (Open MPI sets OMPI_COMM_WORLD_SIZE for its ranks).
bool launched_by_mpirun();
// This process's rank as mpirun set it in the environment (0 when not launched by it), for
// what must happen once before any communicator exists: a summary printed, a file written.
int launched_rank();

// Initialises MPI on first construction (MPI_Init_thread; MPI_Finalize runs at exit unless a
// collective failed, in which case the process leaves without it and mpirun ends the job).
// Each instance owns a duplicate of MPI_COMM_WORLD, so constructing one is itself collective.
// Collectives run on a thread of the communicator in the order they are called, which is what
// lets start_all_reduce overlap with computation; the calling thread waits for its own.
class MpiCommunicator final : public Communicator {
public:
    explicit MpiCommunicator(MpiOptions options = {});
    ~MpiCommunicator() override;
    MpiCommunicator(const MpiCommunicator&) = delete;
    MpiCommunicator& operator=(const MpiCommunicator&) = delete;

    int rank() const override;
    int size() const override;
    // Host tensors only; sums and maxima of f32, f64, bf16; gathers and broadcasts of any
    // element type. Sizes must agree across ranks (a mismatch is an Error naming both sizes).
    void all_reduce(Tensor x, ReduceOp op = ReduceOp::Sum) override;
    void reduce_scatter(Tensor out, Tensor in) override;
    void all_gather(Tensor out, Tensor in) override;
    void broadcast(Tensor x, int root) override;
    void barrier() override;
    std::unique_ptr<PendingCollective> start_all_reduce(Tensor x, ReduceOp op = ReduceOp::Sum) override;
    uint64_t bytes_sent() const override;

    struct Impl;

private:
    std::unique_ptr<Impl> impl_;
};

// The communicator of this process: MpiCommunicator under mpirun, LocalCommunicator otherwise.
std::unique_ptr<Communicator> make_communicator(MpiOptions options = {});

}  // namespace tandem::dist

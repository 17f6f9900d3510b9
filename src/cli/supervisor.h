// `tandem train --supervise N`: runs the trainer as a child process and, when it crashes (killed
// by a signal, or ended by its watchdog), starts it again with `--resume auto`, up to N times. A
// trainer that stops with an error of its own (exit 1 or 2: bad input, an anomaly that the
// policy says stops the run) is not restarted: the same error would come back.
// With --ranks N the child is a whole data-parallel job, `mpirun -np N tandem train ...`: when
// any rank dies, mpirun ends the job, and the supervisor starts the job again from the newest
// valid checkpoint (docs/DISTRIBUTED.md).
#pragma once

#include <string>
#include <vector>

namespace tandem::cli {

// Set in the environment of supervised trainers: the attempt, 0 for the first.
inline constexpr const char* kSupervisedAttemptVariable = "TANDEM_SUPERVISED_ATTEMPT";
// The trainer's exit code when its watchdog found a hung step.
inline constexpr int kExitHung = 3;
// The trainer's exit code when a collective failed (a peer rank died or hung): restartable.
inline constexpr int kExitPeerLost = 4;

struct SuperviseOptions {
    int max_restarts = 0;
    // 0: the trainer is one child process. N > 0: the child is `mpirun -np N <mpirun_args...>
    // <this program> <these arguments>`; mpirun is $TANDEM_MPIRUN or `mpirun` on the PATH.
    int ranks = 0;
    std::vector<std::string> mpirun_args;  // e.g. --hostfile hosts
};

// Runs this same command line as a child until it succeeds or the restarts run out; returns the
// exit code for the supervisor itself.
int supervise_training(const SuperviseOptions& options);

// The attempt number when this process is a supervised trainer, else -1.
int supervised_attempt();

}  // namespace tandem::cli

// `tandem train --supervise N`: runs the trainer as a child process and, when it crashes (killed
// by a signal, or ended by its watchdog), starts it again with `--resume auto`, up to N times. A
// trainer that stops with an error of its own (exit 1 or 2: bad input, an anomaly that the
// policy says stops the run) is not restarted: the same error would come back.
#pragma once

namespace tandem::cli {

// Set in the environment of supervised trainers: the attempt, 0 for the first.
inline constexpr const char* kSupervisedAttemptVariable = "TANDEM_SUPERVISED_ATTEMPT";
// The trainer's exit code when its watchdog found a hung step.
inline constexpr int kExitHung = 3;

// Runs this same command line as a child until it succeeds or the restarts run out; returns the
// exit code for the supervisor itself.
int supervise_training(int max_restarts);

// The attempt number when this process is a supervised trainer, else -1.
int supervised_attempt();

}  // namespace tandem::cli

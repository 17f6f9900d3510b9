// How training progress looks: on a terminal a live line (step/total, loss, tokens/s, ETA)
// rewritten in place, with evaluations kept on their own lines; in a pipe a plain line every
// log_every steps and at each evaluation. Shared by `train` and `demo`.
#pragma once

#include <cstdint>

#include "train/trainer.h"

namespace tandem::cli {

train::TrainEvents train_progress_events(int64_t log_every);
// Clears a live line left on the terminal (call after training returns).
void end_train_progress();

}  // namespace tandem::cli

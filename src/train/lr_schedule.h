// The learning-rate schedule: linear warm-up from 0 to lr_peak over warmup_steps, then cosine
// decay to lr_min at the last step. A pure function of the step, so a resumed run continues the
// schedule exactly.
#pragma once

#include <cstdint>

namespace tandem::train {

struct LrSchedule {
    double lr_peak = 1e-3;
    double lr_min = 1e-4;
    int64_t warmup_steps = 0;
    int64_t total_steps = 1;

    // step is 1-based: the first update uses lr_at(1).
    double lr_at(int64_t step) const;
};

}  // namespace tandem::train

// Warm-up then cosine decay.
#include "train/lr_schedule.h"

#include <algorithm>
#include <cmath>

namespace tandem::train {

double LrSchedule::lr_at(int64_t step) const {
    if (warmup_steps > 0 && step <= warmup_steps)
        return lr_peak * static_cast<double>(step) / static_cast<double>(warmup_steps);
    const int64_t decay_steps = total_steps - warmup_steps;
    if (decay_steps <= 0) return lr_peak;
    const double progress =
        std::clamp(static_cast<double>(step - warmup_steps) / static_cast<double>(decay_steps), 0.0, 1.0);
    return lr_min + 0.5 * (lr_peak - lr_min) * (1.0 + std::cos(M_PI * progress));
}

}  // namespace tandem::train

// The training progress line.
#include "cli/train_progress.h"

#include <cstdio>
#include <string>

#include "cli/progress_bar.h"
#include "core/log.h"

namespace tandem::cli {

train::TrainEvents train_progress_events(int64_t log_every) {
    const bool live = stderr_is_terminal();
    train::TrainEvents events;
    events.on_message = [live](const std::string& text) {
        if (live) std::fputs("\r\033[K", stderr);
        log_info(text);
    };
    events.on_warning = [live](const std::string& text) {
        if (live) std::fputs("\r\033[K", stderr);
        log_warn(text);
    };
    events.on_step = [live, log_every](const train::StepReport& r) {
        char line[256];
        int n = std::snprintf(line, sizeof line, "step %lld/%lld | loss %.4f | lr %.2e | %.0f tok/s | ETA %s",
                              (long long)r.step, (long long)r.total_steps, r.loss, r.lr, r.tokens_per_s,
                              format_duration(r.seconds_left).c_str());
        // Data parallel: what this rank put on the links in the step.
        if (r.bytes_sent >= 1000000) n += std::snprintf(line + n, sizeof line - n, " | sent %.2f MB", double(r.bytes_sent) / 1e6);
        else if (r.bytes_sent >= 1000) n += std::snprintf(line + n, sizeof line - n, " | sent %.1f kB", double(r.bytes_sent) / 1e3);
        else if (r.bytes_sent > 0) n += std::snprintf(line + n, sizeof line - n, " | sent %llu B", (unsigned long long)r.bytes_sent);
        if (r.val_loss) std::snprintf(line + n, sizeof line - n, " | val %.4f", *r.val_loss);
        if (live) {
            std::fprintf(stderr, "\r\033[K%s%s", line, r.val_loss ? "\n" : "");
            std::fflush(stderr);
        } else if (r.step % log_every == 0 || r.val_loss) {
            log_info(line);
        }
    };
    return events;
}

void end_train_progress() {
    if (stderr_is_terminal()) std::fputs("\r\033[K", stderr);
}

}  // namespace tandem::cli

// ProgressBar: isatty(stderr) decides; rates are averages since the start.
#include "cli/progress_bar.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>

namespace tandem::cli {

std::string format_duration(double seconds) {
    const long s = seconds > 0 ? long(seconds + 0.5) : 0;
    char text[32];
    if (s < 60) std::snprintf(text, sizeof text, "%lds", s);
    else if (s < 3600) std::snprintf(text, sizeof text, "%ldm%02lds", s / 60, s % 60);
    else std::snprintf(text, sizeof text, "%ldh%02ldm", s / 3600, s / 60 % 60);
    return text;
}

bool stderr_is_terminal() { return ::isatty(STDERR_FILENO) == 1; }

ProgressBar::ProgressBar(std::string label)
    : label_(std::move(label)),
      enabled_(stderr_is_terminal()),
      start_(std::chrono::steady_clock::now()),
      last_draw_(start_) {}

void ProgressBar::update(int64_t done, int64_t total) {
    last_done_ = done;
    last_total_ = total;
    auto now = std::chrono::steady_clock::now();
    if (now - last_draw_ < std::chrono::milliseconds(200)) return;
    last_draw_ = now;
    draw(done, total);
}

void ProgressBar::finish() {
    draw(last_done_, last_total_);
    if (enabled_) std::fputc('\n', stderr);
}

void ProgressBar::draw(int64_t done, int64_t total) {
    if (!enabled_) return;
    double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
    // done passes total when stdin is among the inputs: its size is not known in advance.
    double fraction = total > 0 ? std::min(1.0, double(done) / double(total)) : 1.0;
    double mb_per_s = seconds > 0 ? double(done) / 1e6 / seconds : 0.0;
    double eta = mb_per_s > 0 ? std::max(0.0, double(total - done) / 1e6 / mb_per_s) : 0.0;
    constexpr int kWidth = 30;
    int filled = int(fraction * kWidth + 0.5);
    std::string bar(size_t(filled), '#');
    bar.resize(kWidth, '.');
    std::fprintf(stderr, "\r%s [%s] %5.1f%% %.1f/%.1f MB %.1f MB/s ETA %s   ", label_.c_str(),
                 bar.c_str(), 100 * fraction, double(done) / 1e6, double(total) / 1e6, mb_per_s,
                 format_duration(eta).c_str());
    std::fflush(stderr);
}

}  // namespace tandem::cli

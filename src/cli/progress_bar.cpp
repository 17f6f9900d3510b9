// ProgressBar: isatty(stderr) decides; rates are averages since the start.
#include "cli/progress_bar.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>

namespace tandem::cli {

ProgressBar::ProgressBar(std::string label)
    : label_(std::move(label)),
      enabled_(::isatty(STDERR_FILENO) == 1),
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
    double fraction = total > 0 ? double(done) / double(total) : 1.0;
    double mb_per_s = seconds > 0 ? double(done) / 1e6 / seconds : 0.0;
    double eta = mb_per_s > 0 ? std::max(0.0, double(total - done) / 1e6 / mb_per_s) : 0.0;
    constexpr int kWidth = 30;
    int filled = int(fraction * kWidth + 0.5);
    std::string bar(size_t(filled), '#');
    bar.resize(kWidth, '.');
    std::fprintf(stderr, "\r%s [%s] %5.1f%% %.1f/%.1f MB %.1f MB/s ETA %.0fs   ", label_.c_str(),
                 bar.c_str(), 100 * fraction, double(done) / 1e6, double(total) / 1e6, mb_per_s,
                 eta);
    std::fflush(stderr);
}

}  // namespace tandem::cli

// A one-line progress bar on stderr (percent, MB done, MB/s, ETA), drawn only when stderr is a
// terminal: logs and pipes get no carriage-return noise.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace tandem::cli {

// "42s", "3m05s", "2h07m": short enough for a progress line.
std::string format_duration(double seconds);
bool stderr_is_terminal();

class ProgressBar {
   public:
    explicit ProgressBar(std::string label);
    // Redraws at most a few times a second; `done` and `total` are bytes.
    void update(int64_t done, int64_t total);
    // Draws the final state and ends the line.
    void finish();

   private:
    void draw(int64_t done, int64_t total);

    std::string label_;
    bool enabled_;
    std::chrono::steady_clock::time_point start_, last_draw_;
    int64_t last_done_ = 0, last_total_ = 0;
};

}  // namespace tandem::cli

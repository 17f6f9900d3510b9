// The watchdog thread.
#include "train/watchdog.h"

#include <algorithm>
#include <sstream>
#include <vector>

namespace tandem::train {

namespace {
constexpr size_t kRecentSteps = 50;
constexpr size_t kStepsForMedian = 3;  // before this many steps, min_seconds × 5 applies
}  // namespace

Watchdog::Watchdog(double factor, double min_seconds, std::function<void(const std::string&)> on_hang)
    : factor_(factor), min_seconds_(min_seconds), on_hang_(std::move(on_hang)),
      last_beat_(std::chrono::steady_clock::now()) {
    if (factor_ > 0) thread_ = std::thread([this] { watch(); });
}

Watchdog::~Watchdog() {
    if (!thread_.joinable()) return;
    {
        std::lock_guard lock(mutex_);
        stopping_ = true;
    }
    stop_.notify_all();
    thread_.join();
}

void Watchdog::beat(const char* phase, int64_t step) {
    std::lock_guard lock(mutex_);
    last_beat_ = std::chrono::steady_clock::now();
    phase_ = phase;
    step_ = step;
}

void Watchdog::step_took(double seconds) {
    std::lock_guard lock(mutex_);
    step_seconds_.push_back(seconds);
    if (step_seconds_.size() > kRecentSteps) step_seconds_.pop_front();
}

double Watchdog::limit_seconds() const {
    std::lock_guard lock(mutex_);
    return limit_locked();
}

double Watchdog::limit_locked() const {
    if (step_seconds_.size() < kStepsForMedian) return 5 * min_seconds_;
    std::vector<double> v(step_seconds_.begin(), step_seconds_.end());
    std::nth_element(v.begin(), v.begin() + v.size() / 2, v.end());
    return std::max(min_seconds_, factor_ * v[v.size() / 2]);
}

void Watchdog::watch() {
    std::unique_lock lock(mutex_);
    while (!stopping_) {
        const double limit = limit_locked();
        const double quiet = std::chrono::duration<double>(std::chrono::steady_clock::now() - last_beat_).count();
        if (quiet > limit) {
            std::ostringstream diagnostic;
            diagnostic << "watchdog: step " << step_ << " has been in '" << phase_ << "' for " << quiet
                       << " s, over the limit of " << limit << " s (" << factor_ << " x the median step of the last "
                       << step_seconds_.size() << ", at least " << min_seconds_
                       << " s): a hung device, collective or file system?";
            auto on_hang = on_hang_;
            lock.unlock();
            on_hang(diagnostic.str());
            return;
        }
        // Check often enough to react within a tenth of the limit, but at most 4 times a second.
        stop_.wait_for(lock, std::chrono::duration<double>(std::max(0.25, std::min(limit - quiet, limit / 10))));
    }
}

}  // namespace tandem::train

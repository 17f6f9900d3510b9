// A watchdog for hung steps: a device or a collective that never returns leaves the training
// loop waiting forever, which no exception can interrupt. The loop beats at every phase; a
// thread checks that the time since the last beat stays under max(min_seconds, factor × the
// median step time) and otherwise calls on_hang once with a diagnostic. on_hang is expected to
// end the process (a supervisor then restarts the run from its newest checkpoint).
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

namespace tandem::train {

class Watchdog {
public:
    // factor 0 turns the watchdog off.
    Watchdog(double factor, double min_seconds, std::function<void(const std::string&)> on_hang);
    ~Watchdog();
    Watchdog(const Watchdog&) = delete;
    Watchdog& operator=(const Watchdog&) = delete;

    void beat(const char* phase, int64_t step);  // progress: the clock starts again
    void step_took(double seconds);              // one more step time for the median
    // The allowed time without a beat, at the current median.
    double limit_seconds() const;

private:
    double limit_locked() const;
    void watch();

    const double factor_, min_seconds_;
    std::function<void(const std::string&)> on_hang_;
    mutable std::mutex mutex_;
    std::condition_variable stop_;
    bool stopping_ = false;
    std::chrono::steady_clock::time_point last_beat_;
    const char* phase_ = "setup";
    int64_t step_ = 0;
    std::deque<double> step_seconds_;  // the most recent steps
    std::thread thread_;
};

}  // namespace tandem::train

// Watches every step's loss and global gradient norm before the update is applied: a value that
// is NaN or infinite, or a spike far above the recent steps, is an anomaly. A spike must pass two
// tests against a moving window of accepted steps: a robust z-score, (x - median) / (1.4826 *
// MAD), which a few earlier spikes cannot drag along the way a mean and standard deviation would,
// and a minimum factor over the median, since a quiet window makes the MAD so small that ordinary
// fluctuation (a gradient norm twice the median) would pass the z-score alone. The caller
// decides what to do (the policy); the guard only judges and remembers.
#pragma once

#include <cstdint>
#include <deque>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

namespace tandem::train {

enum class AnomalyPolicy { Skip, Rollback, Stop };
AnomalyPolicy anomaly_policy_from_string(const std::string& name);  // throws Error
const char* to_string(AnomalyPolicy policy);

struct AnomalyGuardConfig {
    int64_t window = 100;       // accepted steps the spike test compares against
    double zscore = 8.0;        // a spike is this many robust deviations above the median...
    double loss_factor = 1.5;   // ...and a loss this many times the median,
    double norm_factor = 4.0;   // or a gradient norm this many times (healthy runs reach ~2.5x)
    int64_t max_consecutive = 5;  // this many updates refused in a row end the run
};

class AnomalyGuard {
public:
    explicit AnomalyGuard(const AnomalyGuardConfig& config);

    // Why this step is an anomaly ("loss is NaN", "loss 9.1 is 23.4 robust deviations above the
    // median 3.2 of the last 100 steps", ...), or nullopt for a normal step. Does not change the
    // guard.
    std::optional<std::string> check(double loss, double grad_norm) const;
    // Records the outcome of the step just checked: a normal step joins the window and resets the
    // counts of anomalies in a row. An anomaly whose update is refused adds to both counts; one
    // whose update is taken anyway (absorb: a spike that outlived its batch) joins the window, so
    // that a lasting change of level stops being a spike, and counts as an anomaly in a row but
    // not as a refused update.
    void accept(double loss, double grad_norm);
    void reject();
    void absorb(double loss, double grad_norm);
    int64_t consecutive() const { return consecutive_; }  // anomalies in a row
    int64_t refused() const { return refused_; }          // refused updates in a row
    bool too_many_in_a_row() const { return refused_ >= config_.max_consecutive; }
    // Keeps the counts but takes the window of `json` (a rollback to an older state).
    void restore_window(const nlohmann::json& json);

    // The window and the count, saved in checkpoints so that a resumed run judges exactly as the
    // uninterrupted one would.
    nlohmann::json to_json() const;
    void restore(const nlohmann::json& json);  // {} leaves the guard empty

private:
    // Steps the window must hold before spikes are judged: the first steps of training move fast.
    int64_t min_history() const;

    AnomalyGuardConfig config_;
    void push(double loss, double grad_norm);

    std::deque<double> losses_, log_grad_norms_;
    int64_t consecutive_ = 0, refused_ = 0;
};

}  // namespace tandem::train

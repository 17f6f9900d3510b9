// Watches every step's loss and global gradient norm before the update is applied: a value that
// is NaN or infinite, or a spike far above the recent steps, is an anomaly. Spikes are judged by
// a robust z-score over a moving window of accepted steps, (x - median) / (1.4826 * MAD), which a
// few earlier spikes cannot drag along the way a mean and standard deviation would. The caller
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
    double zscore = 8.0;        // a loss or gradient norm this many robust deviations up is a spike
    int64_t max_consecutive = 5;  // this many anomalies in a row end the run
};

class AnomalyGuard {
public:
    explicit AnomalyGuard(const AnomalyGuardConfig& config);

    // Why this step is an anomaly ("loss is NaN", "loss 9.1 is 23.4 robust deviations above the
    // median 3.2 of the last 100 steps", ...), or nullopt for a normal step. Does not change the
    // guard.
    std::optional<std::string> check(double loss, double grad_norm) const;
    // Records the outcome of the step just checked: a normal step joins the window and resets the
    // count of anomalies in a row; an anomaly adds to that count.
    void accept(double loss, double grad_norm);
    void reject() { ++consecutive_; }
    int64_t consecutive() const { return consecutive_; }
    bool too_many_in_a_row() const { return consecutive_ >= config_.max_consecutive; }

    // The window and the count, saved in checkpoints so that a resumed run judges exactly as the
    // uninterrupted one would.
    nlohmann::json to_json() const;
    void restore(const nlohmann::json& json);  // {} leaves the guard empty

private:
    // Steps the window must hold before spikes are judged: the first steps of training move fast.
    int64_t min_history() const;

    AnomalyGuardConfig config_;
    std::deque<double> losses_, log_grad_norms_;
    int64_t consecutive_ = 0;
};

}  // namespace tandem::train

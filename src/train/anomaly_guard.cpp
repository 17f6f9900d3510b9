// Non-finite checks, the spike test (robust z-score and minimum factor), and the counts.
#include "train/anomaly_guard.h"

#include <algorithm>
#include <cmath>
#include <sstream>
#include <vector>

#include "core/error.h"

namespace tandem::train {

namespace {

double median_of(std::vector<double> v) {
    const size_t mid = v.size() / 2;
    std::nth_element(v.begin(), v.begin() + mid, v.end());
    double m = v[mid];
    if (v.size() % 2 == 0) m = 0.5 * (m + *std::max_element(v.begin(), v.begin() + mid));
    return m;
}

// How many robust deviations `x` lies above the window's median. The deviation has a floor so
// that a window of (nearly) equal values does not turn rounding noise into spikes.
double robust_z(const std::deque<double>& window, double x, double& median) {
    std::vector<double> v(window.begin(), window.end());
    median = median_of(v);
    for (double& e : v) e = std::abs(e - median);
    const double scale = std::max({1.4826 * median_of(v), 1e-3 * std::abs(median), 1e-6});
    return (x - median) / scale;
}

std::string fixed(double x, int digits) {
    std::ostringstream s;
    s.precision(digits);
    s << std::fixed << x;
    return s.str();
}

}  // namespace

AnomalyPolicy anomaly_policy_from_string(const std::string& name) {
    if (name == "skip") return AnomalyPolicy::Skip;
    if (name == "rollback") return AnomalyPolicy::Rollback;
    if (name == "stop") return AnomalyPolicy::Stop;
    throw Error("anomaly_policy '", name, "' is not one of skip, rollback, stop");
}

const char* to_string(AnomalyPolicy policy) {
    switch (policy) {
        case AnomalyPolicy::Skip: return "skip";
        case AnomalyPolicy::Rollback: return "rollback";
        case AnomalyPolicy::Stop: return "stop";
    }
    return "?";
}

AnomalyGuard::AnomalyGuard(const AnomalyGuardConfig& config) : config_(config) {
    if (config.window < 5) throw Error("anomaly_window ", config.window, " must be at least 5");
    if (!(config.zscore > 0)) throw Error("anomaly_zscore ", config.zscore, " must be positive");
    if (!(config.loss_factor >= 1))
        throw Error("anomaly_loss_factor ", config.loss_factor, " must be at least 1");
    if (!(config.norm_factor >= 1))
        throw Error("anomaly_norm_factor ", config.norm_factor, " must be at least 1");
    if (config.max_consecutive < 1)
        throw Error("anomaly_max_consecutive ", config.max_consecutive, " must be at least 1");
}

int64_t AnomalyGuard::min_history() const { return std::min<int64_t>(config_.window, 20); }

std::optional<std::string> AnomalyGuard::check(double loss, double grad_norm) const {
    if (std::isnan(loss)) return "loss is NaN";
    if (std::isinf(loss)) return "loss is infinite";
    if (std::isnan(grad_norm)) return "gradient norm is NaN";
    if (std::isinf(grad_norm)) return "gradient norm is infinite";
    if (int64_t(losses_.size()) < min_history()) return std::nullopt;
    const std::string window = " of the last " + std::to_string(losses_.size()) + " steps";
    double median = 0;
    const double z_loss = robust_z(losses_, loss, median);
    if (z_loss > config_.zscore && loss > config_.loss_factor * median)
        return "loss spike: " + fixed(loss, 4) + " is " + fixed(loss / median, 2) + " times the median " +
               fixed(median, 4) + window + " and " + fixed(z_loss, 1) + " robust deviations above it";
    // Gradient norms vary by factors, not by amounts: they are compared on a log scale.
    const double z_norm = robust_z(log_grad_norms_, std::log(std::max(grad_norm, 1e-30)), median);
    const double factor = grad_norm / std::exp(median);
    if (z_norm > config_.zscore && factor > config_.norm_factor)
        return "gradient norm spike: " + fixed(grad_norm, 4) + " is " + fixed(factor, 1) + " times the median " +
               fixed(std::exp(median), 4) + window + " and " + fixed(z_norm, 1) +
               " robust deviations (on a log scale) above it";
    return std::nullopt;
}

void AnomalyGuard::push(double loss, double grad_norm) {
    losses_.push_back(loss);
    log_grad_norms_.push_back(std::log(std::max(grad_norm, 1e-30)));
    while (int64_t(losses_.size()) > config_.window) {
        losses_.pop_front();
        log_grad_norms_.pop_front();
    }
}

void AnomalyGuard::accept(double loss, double grad_norm) {
    push(loss, grad_norm);
    consecutive_ = refused_ = 0;
}

void AnomalyGuard::reject() {
    ++consecutive_;
    ++refused_;
}

void AnomalyGuard::absorb(double loss, double grad_norm) {
    push(loss, grad_norm);
    ++consecutive_;
    refused_ = 0;
}

nlohmann::json AnomalyGuard::to_json() const {
    return {{"losses", losses_}, {"log_grad_norms", log_grad_norms_}, {"consecutive", consecutive_},
            {"refused", refused_}};
}

void AnomalyGuard::restore_window(const nlohmann::json& json) {
    const int64_t consecutive = consecutive_, refused = refused_;
    restore(json);
    consecutive_ = consecutive;
    refused_ = refused;
}

void AnomalyGuard::restore(const nlohmann::json& json) {
    losses_.clear();
    log_grad_norms_.clear();
    consecutive_ = refused_ = 0;
    if (json.empty()) return;
    try {
        for (double x : json.at("losses")) losses_.push_back(x);
        for (double x : json.at("log_grad_norms")) log_grad_norms_.push_back(x);
        consecutive_ = json.at("consecutive").get<int64_t>();
        // Checkpoints from before absorbed spikes existed: every anomaly in a row was refused.
        refused_ = json.value("refused", consecutive_);
    } catch (const nlohmann::json::exception& e) {
        throw Error("anomaly guard state: ", e.what());
    }
    if (losses_.size() != log_grad_norms_.size()) throw Error("anomaly guard state: window lengths differ");
    // A run resumed with a smaller window keeps the newest steps.
    while (int64_t(losses_.size()) > config_.window) {
        losses_.pop_front();
        log_grad_norms_.pop_front();
    }
}

}  // namespace tandem::train

// Parsing, validation and overrides of the training configuration.
#include "train/train_config.h"

#include <algorithm>

#include "core/error.h"
#include "dist/compression.h"
#include "dist/local_sgd.h"
#include "train/anomaly_guard.h"

namespace tandem::train {

namespace {

const std::vector<std::string>& known_keys() {
    static const std::vector<std::string> keys = {
        "model", "init", "batch_size", "seq_len", "grad_accum", "steps", "lr", "lr_min", "warmup_steps",
        "weight_decay", "beta1", "beta2", "eps", "grad_clip", "eval_every", "eval_batches",
        "checkpoint_every", "log_every", "seed", "device", "async_checkpoints", "keep_checkpoints",
        "keep_every", "anomaly_policy", "anomaly_window", "anomaly_zscore", "anomaly_loss_factor",
        "anomaly_norm_factor", "anomaly_max_consecutive",
        "watchdog_factor", "watchdog_min_seconds", "dist_timeout",
        "zero", "compress", "local_steps", "outer_lr", "outer_momentum"};
    return keys;
}

size_t edit_distance(const std::string& a, const std::string& b) {
    std::vector<size_t> row(b.size() + 1);
    for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
    for (size_t i = 1; i <= a.size(); ++i) {
        size_t diagonal = row[0];
        row[0] = i;
        for (size_t j = 1; j <= b.size(); ++j) {
            const size_t up = row[j];
            row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] != b[j - 1])});
            diagonal = up;
        }
    }
    return row[b.size()];
}

template <typename T>
void read_key(const nlohmann::json& json, const char* key, T& out, const std::string& origin) {
    if (!json.contains(key)) return;
    const auto& value = json.at(key);
    bool ok;
    if constexpr (std::is_same_v<T, std::string>) ok = value.is_string();
    else if constexpr (std::is_same_v<T, bool>) ok = value.is_boolean();
    else if constexpr (std::is_integral_v<T>) ok = value.is_number_integer() && (std::is_signed_v<T> || value.get<int64_t>() >= 0);
    else ok = value.is_number();
    if (!ok) throw Error(origin, ": key '", key, "' has value ", value.dump(), " of the wrong type");
    out = value.get<T>();
}

}  // namespace

std::string nearest_key(const std::string& key, const std::vector<std::string>& known) {
    std::string best;
    size_t best_distance = std::max<size_t>(3, key.size() / 2) + 1;
    for (const auto& k : known) {
        const size_t d = edit_distance(key, k);
        if (d < best_distance) best_distance = d, best = k;
    }
    return best;
}

nlohmann::json TrainConfig::to_json() const {
    return {{"model", model},           {"init", init},
            {"batch_size", batch_size},
            {"seq_len", seq_len},       {"grad_accum", grad_accum},
            {"steps", steps},           {"lr", lr},
            {"lr_min", lr_min},         {"warmup_steps", warmup_steps},
            {"weight_decay", weight_decay}, {"beta1", beta1},
            {"beta2", beta2},           {"eps", eps},
            {"grad_clip", grad_clip},   {"eval_every", eval_every},
            {"eval_batches", eval_batches}, {"checkpoint_every", checkpoint_every},
            {"log_every", log_every},   {"seed", seed},
            {"device", device},         {"async_checkpoints", async_checkpoints},
            {"keep_checkpoints", keep_checkpoints}, {"keep_every", keep_every},
            {"anomaly_policy", anomaly_policy}, {"anomaly_window", anomaly_window},
            {"anomaly_zscore", anomaly_zscore}, {"anomaly_loss_factor", anomaly_loss_factor},
            {"anomaly_norm_factor", anomaly_norm_factor}, {"anomaly_max_consecutive", anomaly_max_consecutive},
            {"watchdog_factor", watchdog_factor}, {"watchdog_min_seconds", watchdog_min_seconds},
            {"dist_timeout", dist_timeout},
            {"zero", zero},
            {"compress", compress}, {"local_steps", local_steps},
            {"outer_lr", outer_lr}, {"outer_momentum", outer_momentum}};
}

TrainConfig TrainConfig::from_json(const nlohmann::json& json, const std::string& origin) {
    if (!json.is_object()) throw Error(origin, ": the configuration must be a JSON object");
    for (auto it = json.begin(); it != json.end(); ++it) {
        const auto& keys = known_keys();
        if (std::find(keys.begin(), keys.end(), it.key()) == keys.end()) {
            const std::string near = nearest_key(it.key(), keys);
            throw Error(origin, ": unknown key '", it.key(), "'",
                        near.empty() ? std::string(" (known keys: model, batch_size, seq_len, steps, lr, ...)")
                                     : " (did you mean '" + near + "'?)");
        }
    }
    TrainConfig c;
    if (json.contains("model")) {
        c.model = json.at("model");
        if (!c.model.is_string() && !c.model.is_object())
            throw Error(origin, ": key 'model' must be a preset name or an object, not ", c.model.dump());
    }
    read_key(json, "batch_size", c.batch_size, origin);
    read_key(json, "seq_len", c.seq_len, origin);
    read_key(json, "grad_accum", c.grad_accum, origin);
    read_key(json, "steps", c.steps, origin);
    read_key(json, "lr", c.lr, origin);
    read_key(json, "lr_min", c.lr_min, origin);
    read_key(json, "warmup_steps", c.warmup_steps, origin);
    read_key(json, "weight_decay", c.weight_decay, origin);
    read_key(json, "beta1", c.beta1, origin);
    read_key(json, "beta2", c.beta2, origin);
    read_key(json, "eps", c.eps, origin);
    read_key(json, "grad_clip", c.grad_clip, origin);
    read_key(json, "eval_every", c.eval_every, origin);
    read_key(json, "eval_batches", c.eval_batches, origin);
    read_key(json, "checkpoint_every", c.checkpoint_every, origin);
    read_key(json, "log_every", c.log_every, origin);
    read_key(json, "seed", c.seed, origin);
    read_key(json, "init", c.init, origin);
    read_key(json, "device", c.device, origin);
    read_key(json, "async_checkpoints", c.async_checkpoints, origin);
    read_key(json, "keep_checkpoints", c.keep_checkpoints, origin);
    read_key(json, "keep_every", c.keep_every, origin);
    read_key(json, "anomaly_policy", c.anomaly_policy, origin);
    read_key(json, "anomaly_window", c.anomaly_window, origin);
    read_key(json, "anomaly_zscore", c.anomaly_zscore, origin);
    read_key(json, "anomaly_loss_factor", c.anomaly_loss_factor, origin);
    read_key(json, "anomaly_norm_factor", c.anomaly_norm_factor, origin);
    read_key(json, "anomaly_max_consecutive", c.anomaly_max_consecutive, origin);
    read_key(json, "watchdog_factor", c.watchdog_factor, origin);
    read_key(json, "watchdog_min_seconds", c.watchdog_min_seconds, origin);
    read_key(json, "dist_timeout", c.dist_timeout, origin);
    read_key(json, "zero", c.zero, origin);
    read_key(json, "compress", c.compress, origin);
    read_key(json, "local_steps", c.local_steps, origin);
    read_key(json, "outer_lr", c.outer_lr, origin);
    read_key(json, "outer_momentum", c.outer_momentum, origin);
    try {
        c.validate();
    } catch (const Error& e) {
        throw Error(origin, ": ", e.what());
    }
    return c;
}

void TrainConfig::validate() const {
    const auto positive = [](const char* key, auto value) {
        if (value <= 0) throw Error("config key '", key, "' must be positive, got ", value);
    };
    const auto non_negative = [](const char* key, auto value) {
        if (value < 0) throw Error("config key '", key, "' must not be negative, got ", value);
    };
    positive("batch_size", batch_size);
    positive("seq_len", seq_len);
    positive("grad_accum", grad_accum);
    positive("steps", steps);
    positive("lr", lr);
    non_negative("lr_min", lr_min);
    if (lr_min > lr) throw Error("config key 'lr_min' (", lr_min, ") exceeds 'lr' (", lr, ")");
    non_negative("warmup_steps", warmup_steps);
    non_negative("weight_decay", weight_decay);
    if (!(beta1 >= 0 && beta1 < 1)) throw Error("config key 'beta1' must be in [0, 1), got ", beta1);
    if (!(beta2 >= 0 && beta2 < 1)) throw Error("config key 'beta2' must be in [0, 1), got ", beta2);
    positive("eps", eps);
    non_negative("grad_clip", grad_clip);
    non_negative("eval_every", eval_every);  // 0: no evaluation
    non_negative("eval_batches", eval_batches);
    positive("checkpoint_every", checkpoint_every);
    positive("log_every", log_every);
    positive("keep_checkpoints", keep_checkpoints);
    non_negative("keep_every", keep_every);
    anomaly_policy_from_string(anomaly_policy);
    if (anomaly_window < 5) throw Error("config key 'anomaly_window' must be at least 5, got ", anomaly_window);
    positive("anomaly_zscore", anomaly_zscore);
    for (const auto& [key, factor] : {std::pair{"anomaly_loss_factor", anomaly_loss_factor},
                                      std::pair{"anomaly_norm_factor", anomaly_norm_factor}})
        if (!(factor >= 1)) throw Error("config key '", key, "' must be at least 1 (a factor over the median), got ", factor);
    positive("anomaly_max_consecutive", anomaly_max_consecutive);
    non_negative("watchdog_factor", watchdog_factor);
    positive("watchdog_min_seconds", watchdog_min_seconds);
    positive("dist_timeout", dist_timeout);
    if (zero != 0 && zero != 1)
        throw Error("config key 'zero' must be 0 or 1 (ZeRO stage 1 shards the optimizer state; stages 2 ",
                    "and 3 are not implemented), got ", zero);
    dist::parse_compression(compress);
    dist::LocalStepsOptions{local_steps, outer_lr, outer_momentum}.validate();
    // A rollback restores one rank's snapshot of its own, unsynchronised parameters.
    if (local_steps > 1 && anomaly_policy == "rollback")
        throw Error("config key 'anomaly_policy' is rollback, which local_steps=", local_steps,
                    " does not support (each rank's parameters differ between synchronisations); ",
                    "use skip or stop, or local_steps=1");
    // ZeRO-1 reduce-scatters the plain f32 gradient every step; neither a codec nor local steps
    // sit on that path.
    if (zero == 1 && (compress != "none" || local_steps > 1))
        throw Error("config key 'zero' is 1, which does not combine with compress=", compress, " and local_steps=",
                    local_steps, " (ZeRO-1 reduces the plain gradient every step); use zero=0 for slow links");
}

void apply_overrides(nlohmann::json& config, const std::vector<std::string>& overrides) {
    for (const auto& text : overrides) {
        const size_t eq = text.find('=');
        if (eq == std::string::npos || eq == 0)
            throw Error("override '", text, "' is not of the form KEY=VALUE");
        const std::string key = text.substr(0, eq), value = text.substr(eq + 1);
        nlohmann::json parsed = nlohmann::json::parse(value, nullptr, /*allow_exceptions=*/false);
        config[key] = parsed.is_discarded() ? nlohmann::json(value) : parsed;
    }
}

}  // namespace tandem::train

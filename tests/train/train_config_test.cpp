#include "train/train_config.h"

#include <gtest/gtest.h>

#include "core/error.h"

namespace tandem::train {
namespace {

std::string error_of(const nlohmann::json& json) {
    try {
        TrainConfig::from_json(json, "cfg.json");
    } catch (const Error& e) {
        return e.what();
    }
    return "";
}

TEST(TrainConfig, RoundTripsThroughJson) {
    TrainConfig c;
    c.model = "llama-15m";
    c.steps = 80;
    c.lr = 3e-4;
    TrainConfig d = TrainConfig::from_json(c.to_json(), "x");
    EXPECT_EQ(d.to_json(), c.to_json());
}

TEST(TrainConfig, UnknownKeyNamesItAndSuggestsTheNearest) {
    const std::string message = error_of({{"learning_rate", 1e-3}, {"stpes", 10}});
    EXPECT_NE(message.find("cfg.json"), std::string::npos) << message;
    const std::string typo = error_of({{"batch_sise", 4}});
    EXPECT_NE(typo.find("'batch_sise'"), std::string::npos) << typo;
    EXPECT_NE(typo.find("did you mean 'batch_size'"), std::string::npos) << typo;
}

TEST(TrainConfig, RejectsWrongTypesAndRanges) {
    EXPECT_NE(error_of({{"steps", "many"}}).find("'steps'"), std::string::npos);
    EXPECT_NE(error_of({{"batch_size", 0}}).find("'batch_size'"), std::string::npos);
    EXPECT_NE(error_of({{"beta2", 1.0}}).find("'beta2'"), std::string::npos);
    EXPECT_NE(error_of({{"lr", 1e-3}, {"lr_min", 1e-2}}).find("'lr_min'"), std::string::npos);
    EXPECT_NE(error_of({{"seed", -1}}).find("'seed'"), std::string::npos);
}

TEST(TrainConfig, ReliabilityKeysAreCheckedAndNamed) {
    TrainConfig c = TrainConfig::from_json({{"anomaly_policy", "rollback"}, {"async_checkpoints", false},
                                            {"keep_checkpoints", 2}, {"keep_every", 1000}},
                                           "x");
    EXPECT_EQ(c.anomaly_policy, "rollback");
    EXPECT_FALSE(c.async_checkpoints);
    EXPECT_NE(error_of({{"anomaly_policy", "ignore"}}).find("anomaly_policy 'ignore'"), std::string::npos);
    EXPECT_NE(error_of({{"async_checkpoints", 1}}).find("'async_checkpoints'"), std::string::npos);
    EXPECT_NE(error_of({{"keep_checkpoints", 0}}).find("'keep_checkpoints'"), std::string::npos);
    EXPECT_NE(error_of({{"anomaly_window", 3}}).find("'anomaly_window'"), std::string::npos);
    EXPECT_NE(error_of({{"anomaly_norm_factor", 0.9}}).find("'anomaly_norm_factor' must be at least 1"), std::string::npos);
    EXPECT_NE(error_of({{"watchdog_factor", -1.0}}).find("'watchdog_factor'"), std::string::npos);
    EXPECT_NE(error_of({{"anomaly_polcy", "skip"}}).find("did you mean 'anomaly_policy'"), std::string::npos);
}

TEST(TrainConfig, DistTimeoutIsReadAndMustBePositive) {
    EXPECT_DOUBLE_EQ(TrainConfig::from_json({{"dist_timeout", 45.5}}, "x").dist_timeout, 45.5);
    EXPECT_NE(error_of({{"dist_timeout", 0}}).find("'dist_timeout' must be positive, got 0"), std::string::npos);
    EXPECT_NE(error_of({{"dist_timout", 9}}).find("did you mean 'dist_timeout'"), std::string::npos);
}

TEST(TrainConfig, SlowLinkKeysAreCheckedAndNamed) {
    const TrainConfig c = TrainConfig::from_json(
        {{"compress", "powersgd:4"}, {"local_steps", 8}, {"outer_lr", 0.5}, {"outer_momentum", 0.8}}, "x");
    EXPECT_EQ(c.compress, "powersgd:4");
    EXPECT_EQ(c.local_steps, 8);
    EXPECT_DOUBLE_EQ(c.outer_lr, 0.5);
    EXPECT_DOUBLE_EQ(c.outer_momentum, 0.8);
    EXPECT_EQ(TrainConfig::from_json(c.to_json(), "x").to_json(), c.to_json());
    EXPECT_NE(error_of({{"compress", "int4"}}).find("compress='int4' is not a compression"), std::string::npos);
    EXPECT_NE(error_of({{"compress", "powersgd"}}).find("powersgd needs a rank"), std::string::npos);
    EXPECT_NE(error_of({{"local_steps", 0}}).find("'local_steps' must be at least 1, got 0"), std::string::npos);
    EXPECT_NE(error_of({{"outer_momentum", 1.0}}).find("'outer_momentum' must be in [0, 1)"), std::string::npos);
    EXPECT_NE(error_of({{"local_steps", 4}, {"anomaly_policy", "rollback"}}).find("local_steps=4 does not support"),
              std::string::npos);
    EXPECT_NE(error_of({{"local_step", 4}}).find("did you mean 'local_steps'"), std::string::npos);
    EXPECT_NE(error_of({{"zero", 1}, {"compress", "int8"}}).find("'zero' is 1, which does not combine with compress=int8"),
              std::string::npos);
}

TEST(TrainConfig, ZeroIsStageZeroOrOne) {
    EXPECT_EQ(TrainConfig::from_json(nlohmann::json::object(), "x").zero, 0);
    EXPECT_EQ(TrainConfig::from_json({{"zero", 1}}, "x").zero, 1);
    EXPECT_NE(error_of({{"zero", 2}}).find("'zero' must be 0 or 1"), std::string::npos);
    EXPECT_NE(error_of({{"zero", 2}}).find("got 2"), std::string::npos);
}

TEST(TrainConfig, OverridesParseJsonValuesAndFallBackToStrings) {
    nlohmann::json config = {{"steps", 10}};
    apply_overrides(config, {"steps=20", "lr=0.01", "model=llama-15m", "model={\"family\":\"llama\"}"});
    EXPECT_EQ(config["steps"], 20);
    EXPECT_DOUBLE_EQ(config["lr"].get<double>(), 0.01);
    EXPECT_EQ(config["model"]["family"], "llama");
    EXPECT_THROW(apply_overrides(config, {"steps"}), Error);
}

}  // namespace
}  // namespace tandem::train

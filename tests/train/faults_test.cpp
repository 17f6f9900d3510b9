// Fault specs: what parses, what each default is, what is refused, and that a fault fires once.
#include "train/faults.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "core/error.h"

namespace tandem::train {
namespace {

TEST(Faults, SpecsParseWithTheirDefaults) {
    FaultPlan plan({"nan@3", "nan@4:loss", "nan@5:model.norm.weight", "spike@6", "spike@7:50", "kill@8",
                    "kill@9:checkpoint", "hang@10:2.5", "ckpt-fail@11", "ckpt-corrupt@12", "ckpt-truncate@13"});
    EXPECT_EQ(plan.take(FaultKind::Nan, 3)->target, "grads");
    EXPECT_EQ(plan.take(FaultKind::Nan, 4)->target, "loss");
    EXPECT_EQ(plan.take(FaultKind::Nan, 5)->target, "model.norm.weight");
    EXPECT_EQ(plan.take(FaultKind::Spike, 6)->value, 1000.0);
    EXPECT_EQ(plan.take(FaultKind::Spike, 7)->value, 50.0);
    EXPECT_EQ(plan.take(FaultKind::Kill, 8, "step")->spec, "kill@8");
    EXPECT_EQ(plan.take(FaultKind::Kill, 9)->target, "checkpoint");
    EXPECT_EQ(plan.take(FaultKind::Hang, 10)->value, 2.5);
    EXPECT_NE(plan.take(FaultKind::CheckpointFail, 11), nullptr);
    EXPECT_NE(plan.take(FaultKind::CheckpointCorrupt, 12), nullptr);
    EXPECT_NE(plan.take(FaultKind::CheckpointTruncate, 13), nullptr);
}

TEST(Faults, EachFiresOnceAndOnlyAtItsStepAndTarget) {
    FaultPlan plan({"kill@5:eval"});
    EXPECT_EQ(plan.take(FaultKind::Kill, 4), nullptr);
    EXPECT_EQ(plan.take(FaultKind::Kill, 5, "step"), nullptr);
    EXPECT_NE(plan.take(FaultKind::Kill, 5, "eval"), nullptr);
    EXPECT_EQ(plan.take(FaultKind::Kill, 5, "eval"), nullptr);
}

TEST(Faults, MalformedSpecsAreRefusedWithTheSpecNamed) {
    for (const char* bad : {"nan", "nan@", "nan@0", "nan@x", "boom@3", "kill@3:lunch", "spike@3:-1", "hang@3:abc",
                            "ckpt-fail@3:now"}) {
        try {
            FaultPlan plan({bad});
            ADD_FAILURE() << bad << " was accepted";
        } catch (const Error& e) {
            EXPECT_NE(std::string(e.what()).find(bad), std::string::npos) << e.what();
        }
    }
}

TEST(Faults, EnvironmentVariableIsSplitAtCommas) {
    ::setenv("TANDEM_FAULTS", "nan@3,,kill@9:checkpoint", 1);
    EXPECT_EQ(FaultPlan::specs_from_environment(), (std::vector<std::string>{"nan@3", "kill@9:checkpoint"}));
    ::unsetenv("TANDEM_FAULTS");
    EXPECT_TRUE(FaultPlan::specs_from_environment().empty());
}

TEST(Faults, CorruptAndTruncateDamageTheFile) {
    const auto path = std::filesystem::temp_directory_path() / ("tandem_faults_" + std::to_string(::getpid()));
    std::ofstream(path) << "0123456789";
    corrupt_file(path.string());
    std::ifstream in(path);
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    EXPECT_EQ(text.size(), 10u);
    EXPECT_NE(text, "0123456789");
    truncate_file_to_half(path.string());
    EXPECT_EQ(std::filesystem::file_size(path), 5u);
    std::filesystem::remove(path);
}

}  // namespace
}  // namespace tandem::train

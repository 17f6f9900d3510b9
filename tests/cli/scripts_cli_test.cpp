// scripts/setup, which the README's first command runs: the main job (build, demo) installs only
// what it needs; the tests' tools (GoogleTest, PyTorch, npm packages) come with --tests, which
// scripts/test passes.
#include <gtest/gtest.h>

#include <cstdio>
#include <sstream>
#include <string>
#include <vector>

#include "common/test_util.h"
#include "io/atomic_file.h"

namespace tandem {
namespace {

// What `scripts/setup ARGS --list` would install, one item a line.
std::vector<std::string> setup_list(const std::string& args) {
    const std::string cmd = "'" + testing::test_data_path("../scripts/setup") + "' " + args + " --list";
    FILE* pipe = ::popen(cmd.c_str(), "r");
    EXPECT_NE(pipe, nullptr);
    std::string out;
    char buffer[4096];
    for (size_t n; pipe && (n = std::fread(buffer, 1, sizeof buffer, pipe)) > 0;) out.append(buffer, n);
    EXPECT_EQ(pipe ? ::pclose(pipe) : -1, 0) << cmd;
    std::vector<std::string> items;
    std::istringstream lines(out);
    for (std::string line; std::getline(lines, line);) items.push_back(line);
    return items;
}

bool has(const std::vector<std::string>& items, const std::string& item) {
    for (const std::string& i : items)
        if (i == item) return true;
    return false;
}

TEST(Scripts, MainSetupInstallsTheBuildAndTheDemoAndTheTestsAddTheirTools) {
    const std::vector<std::string> main_job = setup_list("");
    for (const char* needed : {"cmake", "g++", "libopenblas-openmp-dev", "libcli11-dev", "fortunes"})
        EXPECT_TRUE(has(main_job, needed)) << needed;
    for (const char* test_only : {"python3-torch", "libgtest-dev", "libtcmalloc-minimal4",
                                  "tests/interop/package-lock.json", "chromium"})
        EXPECT_FALSE(has(main_job, test_only)) << test_only << " is for the tests only";

    const std::vector<std::string> tests = setup_list("--tests");
    for (const std::string& item : main_job) EXPECT_TRUE(has(tests, item)) << item;
    for (const char* test_only : {"python3-torch", "libgtest-dev", "libgmock-dev",
                                  "tests/interop/package-lock.json", "chromium",
                                  "tests/serve/js/package-lock.json"})
        EXPECT_TRUE(has(tests, test_only)) << test_only;

    const std::string run_tests = io::read_file(testing::test_data_path("../scripts/test"));
    EXPECT_NE(run_tests.find("scripts/setup --tests"), std::string::npos);
}

}  // namespace
}  // namespace tandem

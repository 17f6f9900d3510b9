// What a tandem process loads at start: nothing of CUDA until the cuda device is asked for
// (libtandem_cuda.so, dlopen-ed by backend/registry.cpp), so that `tandem --help` and the
// tokenizer start in milliseconds even in a build with the CUDA backend.
#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "cli/cli_util.h"
#include "common/test_util.h"

namespace tandem {
namespace {

using testing::CliRun;
using testing::tandem;

// LD_DEBUG=files makes the dynamic loader report every library it maps, on stderr.
constexpr const char* kTraceLoads = "LD_DEBUG=files";

bool maps_cuda(const std::string& trace) {
    return trace.find("libcudart") != std::string::npos ||
           trace.find("libcublas") != std::string::npos;
}

TEST(Startup, NoCudaLibraryIsMappedUntilTheCudaDeviceIsAskedFor) {
    testing::TempDir dir;
    CliRun help = tandem(dir, "--help", "", kTraceLoads);
    EXPECT_EQ(help.code, 0);
    EXPECT_FALSE(maps_cuda(help.err)) << help.err;
    CliRun encode = tandem(dir, "tokenizer encode --tokenizer " + testing::trained_tokenizer(dir),
                           dir.write("line.txt", "one line\n"), kTraceLoads);
    EXPECT_EQ(encode.code, 0) << encode.err;
    EXPECT_FALSE(maps_cuda(encode.err)) << encode.err;

    // Asking for the device loads the backend (and the CUDA libraries), whether or not a GPU is
    // there: the command then fails on its missing model, or on the missing GPU.
    CliRun cuda = tandem(dir, "generate --model nowhere --device cuda", "", kTraceLoads);
    EXPECT_EQ(cuda.code, 1) << cuda.err;
    const auto beside = std::filesystem::path(testing::tandem_binary()).parent_path();
    if (std::filesystem::exists(beside / "libtandem_cuda.so")) {
        EXPECT_NE(cuda.err.find("libtandem_cuda.so"), std::string::npos) << cuda.err;
        EXPECT_TRUE(maps_cuda(cuda.err)) << cuda.err;
    } else {
        EXPECT_NE(cuda.err.find("built without CUDA"), std::string::npos) << cuda.err;
    }
}

}  // namespace
}  // namespace tandem

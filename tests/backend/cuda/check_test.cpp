// What needs no GPU: the error helper behind TANDEM_CUDA_CHECK, and the registry's reason when
// no GPU is usable. These run in CI (nvcc, no GPU) as well as on GPU machines.
#include <gtest/gtest.h>

#include "backend/cuda/cuda_test_util.h"
#ifdef TANDEM_HAS_CUDA
#include "backend/cuda/check.h"
#endif

namespace tandem::testing {
namespace {

TEST(CudaCheck, FailingCallBecomesErrorWithCallTextAndLocation) {
#ifdef TANDEM_HAS_CUDA
    try {
        TANDEM_CUDA_CHECK(cudaErrorInvalidValue);
        FAIL() << "no Error thrown";
    } catch (const Error& e) {
        const std::string what = e.what();
        EXPECT_NE(what.find("cudaErrorInvalidValue"), std::string::npos) << what;
        EXPECT_NE(what.find("check_test.cpp:"), std::string::npos) << what;
    }
    try {
        TANDEM_CUDA_CHECK(CUBLAS_STATUS_NOT_SUPPORTED);
        FAIL() << "no Error thrown";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("CUBLAS_STATUS_NOT_SUPPORTED"), std::string::npos)
            << e.what();
    }
    TANDEM_CUDA_CHECK(cudaSuccess);  // no throw
#else
    GTEST_SKIP() << "built without CUDA";
#endif
}

TEST(CudaRegistry, UnavailableCudaComesWithAReason) {
    if (backend::is_backend_available("cuda")) GTEST_SKIP() << "a CUDA GPU is usable here";
    const std::string why = cuda_unavailable_reason();
    EXPECT_NE(why.find("cuda"), std::string::npos) << why;
    EXPECT_GT(why.size(), std::string("device cuda is not available: ").size()) << why;
}

}  // namespace
}  // namespace tandem::testing

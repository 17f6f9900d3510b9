// Tests that run once for each kernel of tandem's own matrix product (backend/cpu/gemm.h),
// skipping, and saying so, a kernel this CPU cannot run:
//   class OwnThing : public OnEachOwnKernel {};
//   TEST_P(OwnThing, ...) { ... GetParam() ... }
//   INSTANTIATE_TEST_SUITE_P(Kernels, OwnThing, kOwnKernels, own_kernel_name);
#pragma once

#include <gtest/gtest.h>

#include <string>

#include "backend/cpu/gemm.h"

namespace tandem::backend::cpu {

class OnEachOwnKernel : public ::testing::TestWithParam<GemmKernel> {
   protected:
    void SetUp() override {
        if (!gemm_kernel_runs(GetParam()))
            GTEST_SKIP() << "this CPU cannot run the " << gemm_kernel_name(GetParam()) << " kernel";
    }
};

inline const auto kOwnKernels = ::testing::Values(GemmKernel::avx2, GemmKernel::avx512);

inline std::string own_kernel_name(const ::testing::TestParamInfo<GemmKernel>& info) {
    return info.param == GemmKernel::avx2 ? "avx2" : "avx512";
}

}  // namespace tandem::backend::cpu

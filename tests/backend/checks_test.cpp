// The launchers' shape and dtype checks (backend/checks.cpp): a call that a tandem bug got wrong
// stops with the shapes involved, on every backend, before any kernel runs.
#include <gtest/gtest.h>

#include "backend/registry.h"
#include "common/test_util.h"

namespace tandem::testing {
namespace {

std::vector<std::string> all_backends() {
    return backend::available_backends();
}

TEST(ChecksDeathTest, MatmulWithMismatchedInnerSizesStopsWithTheShapes) {
    for (const std::string& name : all_backends()) {
        backend::Backend& be = backend::get_backend(name);
        DeviceTensor out(be, DType::F32, {2, 3}), a(be, DType::F32, {2, 4}),
            b(be, DType::F32, {5, 3});
        EXPECT_DEATH(be.matmul(out, a, b, Tensor(), false, false, false), "\\[5, 3\\], \\[4, 3\\]")
            << name;
    }
}

TEST(ChecksDeathTest, AttentionWithHeadsThatDoNotDivideTheWidthStops) {
    for (const std::string& name : all_backends()) {
        backend::Backend& be = backend::get_backend(name);
        DeviceTensor qkv(be, DType::F32, {1, 2, 30}), out(be, DType::F32, {1, 2, 16}),
            lse(be, DType::F32, {1, 4, 2});
        EXPECT_DEATH(be.attention_forward(out, lse, qkv, 4, 3), "H % Hkv") << name;
        EXPECT_DEATH(be.attention_forward(out, lse, qkv, 4, 2), "f32\\[1, 2, 30\\]") << name;
    }
}

TEST(ChecksDeathTest, NormWithStatisticsInTheWrongDtypeStops) {
    for (const std::string& name : all_backends()) {
        backend::Backend& be = backend::get_backend(name);
        DeviceTensor x(be, DType::F32, {3, 8}), y(be, DType::F32, {3, 8}), w(be, DType::F32, {8}),
            rstd(be, DType::F64, {3});
        EXPECT_DEATH(be.rms_norm_forward(y, rstd, x, w, 1e-5f), "f64") << name;
    }
}

TEST(ChecksDeathTest, CpuRejectsF64) {
    if (!backend::is_backend_available("cpu")) GTEST_SKIP() << "no cpu backend";
    backend::Backend& be = backend::get_backend("cpu");
    DeviceTensor x(be, DType::F64, {4}), y(be, DType::F64, {4});
    EXPECT_FALSE(be.supports(DType::F64));
    EXPECT_DEATH(be.gelu_forward(y, x), "f32 only");
}

}  // namespace
}  // namespace tandem::testing

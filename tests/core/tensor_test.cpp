#include "core/tensor.h"

#include <gtest/gtest.h>

namespace tandem {
namespace {

TEST(Tensor, ShapeArithmetic) {
    float data[24];
    Tensor t(data, DType::F32, {2, 3, 4});
    EXPECT_EQ(t.numel(), 24);
    EXPECT_EQ(t.bytes(), 96u);
    EXPECT_EQ(t.rows(), 6);
    EXPECT_EQ(t.cols(), 4);
    EXPECT_EQ(t.shape[-1], 4);
    EXPECT_EQ(t.str(), "f32[2, 3, 4]");
    Tensor v = t.view({6, 4});
    EXPECT_EQ(v.data, t.data);
    EXPECT_EQ(v.shape, (Shape{6, 4}));
    Tensor s = t.slice(4, 8);
    EXPECT_EQ(s.as<float>(), data + 4);
    EXPECT_EQ(s.numel(), 8);
}

}  // namespace
}  // namespace tandem

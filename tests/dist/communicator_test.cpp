// The single-process side of dist/: the local communicator, the fixed-order reduction every
// communicator sums with, and the choice between local and MPI.
#include "dist/communicator.h"

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "dist/host_reduce.h"
#include "dist/mpi_communicator.h"

namespace tandem::dist {
namespace {

TEST(LocalCommunicator, CollectivesOfOneRankAreIdentitiesAndCopies) {
    LocalCommunicator comm;
    std::vector<float> x = {1, 2, 3}, y(3, -1);
    comm.all_reduce(Tensor(x.data(), DType::F32, {3}));
    comm.start_all_reduce(Tensor(x.data(), DType::F32, {3}))->wait();
    EXPECT_EQ(x, (std::vector<float>{1, 2, 3}));
    comm.reduce_scatter(Tensor(y.data(), DType::F32, {3}), Tensor(x.data(), DType::F32, {3}));
    EXPECT_EQ(y, x);
    std::fill(y.begin(), y.end(), -1.0f);
    comm.all_gather(Tensor(y.data(), DType::F32, {3}), Tensor(x.data(), DType::F32, {3}));
    EXPECT_EQ(y, x);
    EXPECT_EQ(comm.bytes_sent(), 0u);
}

TEST(HostReduce, SumsF32InOrderRoundingAfterEachPart) {
    // f32 arithmetic in rank order, as one rank adds its micro-batches: 1e8 + 1 rounds back to
    // 1e8, so the 1 is lost (in double, rounded once, the sum would be 1). In the other order
    // the 1 survives.
    const float a[] = {1e8f, 2.0f}, b[] = {1.0f, 3.0f}, c[] = {-1e8f, 4.0f};
    float out[2];
    const void* parts[] = {a, b, c};
    reduce_in_order(out, parts, 2, DType::F32, ReduceOp::Sum);
    EXPECT_EQ(out[0], 0.0f);
    EXPECT_EQ(out[1], 9.0f);
    const void* reordered[] = {a, c, b};
    reduce_in_order(out, reordered, 2, DType::F32, ReduceOp::Sum);
    EXPECT_EQ(out[0], 1.0f);
}

TEST(HostReduce, SumsBf16InDoubleAndRoundsOnce) {
    // bf16 keeps 8 bits: 256 + 1 rounds back to 256 at each step, but not in double.
    const uint16_t a[] = {bf16_from_f32(256.0f)}, b[] = {bf16_from_f32(1.0f)},
                   c[] = {bf16_from_f32(1.0f)};
    const void* parts[] = {a, b, c};
    uint16_t out[1];
    reduce_in_order(out, parts, 1, DType::BF16, ReduceOp::Sum);
    EXPECT_EQ(f32_from_bf16(out[0]), 258.0f);
}

TEST(HostReduce, ReducesIntoOneOfItsPartsOverManyBlocks) {
    const int64_t n = 3000;  // crosses the f32 path's blocks of 1024
    std::vector<float> a(n), b(n);
    for (int64_t i = 0; i < n; ++i) {
        a[i] = 0.5f * i;
        b[i] = 1.0f - i;
    }
    const void* parts[] = {a.data(), b.data()};
    reduce_in_order(a.data(), parts, n, DType::F32, ReduceOp::Sum);
    for (int64_t i = 0; i < n; ++i) ASSERT_EQ(a[i], 1.0f - 0.5f * i) << i;
}

TEST(HostReduce, Bf16F64AndMaxWithNaN) {
    const uint16_t a[] = {bf16_from_f32(1.5f), bf16_from_f32(-2.0f)};
    const uint16_t b[] = {bf16_from_f32(0.25f), bf16_from_f32(8.0f)};
    const void* hparts[] = {a, b};
    uint16_t h[2];
    reduce_in_order(h, hparts, 2, DType::BF16, ReduceOp::Sum);
    EXPECT_EQ(f32_from_bf16(h[0]), 1.75f);
    EXPECT_EQ(f32_from_bf16(h[1]), 6.0f);
    const double d1[] = {1.0, NAN, 3.0}, d2[] = {2.0, 0.0, -3.0};
    const void* dparts[] = {d1, d2};
    double d[3];
    reduce_in_order(d, dparts, 3, DType::F64, ReduceOp::Max);
    EXPECT_EQ(d[0], 2.0);
    EXPECT_TRUE(std::isnan(d[1]));
    EXPECT_EQ(d[2], 3.0);
    EXPECT_FALSE(is_reducible(DType::I32));
}

TEST(MakeCommunicator, IsLocalOutsideMpirun) {
    if (launched_by_mpirun()) GTEST_SKIP() << "this test runs outside mpirun";
    auto comm = make_communicator();
    EXPECT_EQ(comm->size(), 1);
    EXPECT_NE(dynamic_cast<LocalCommunicator*>(comm.get()), nullptr);
}

}  // namespace
}  // namespace tandem::dist

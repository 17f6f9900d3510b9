// The outer step of local steps on two ranks: construction gives every rank rank 0's
// parameters, and a synchronisation leaves every rank on the same anchor, moved by the
// Nesterov step of the averaged change; also with the change sent compressed.
#include <gtest/gtest.h>

#include <cstring>

#include "dist/local_sgd.h"
#include "dist/mpi/mpi_world.h"

namespace tandem::dist::test {
namespace {

TEST(OuterOptimizerMpi, StartsFromRankZeroAndAveragesTheRanksChanges) {
    MpiCommunicator& comm = world();
    const int64_t n = 1000;
    std::vector<float> p = rank_input(comm.rank(), n, 50);  // different on each rank
    const std::vector<float> start = rank_input(0, n, 50);
    OuterOptimizer outer(LocalStepsOptions{2, 0.7, 0.9}, Tensor(p.data(), DType::F32, {n}), comm);
    EXPECT_EQ(std::memcmp(p.data(), start.data(), n * 4), 0);
    for (int step = 0; step < 2; ++step) {
        for (int64_t i = 0; i < n; ++i) p[i] += 0.01f * (comm.rank() + 1) * static_cast<float>(i % 7);
        EXPECT_EQ(outer.after_inner_step(), step == 1);
    }
    for (int64_t i = 0; i < n; ++i) {
        // Changes of 2 x 0.01 x (1 and 2) x (i % 7): their mean is 0.03 x (i % 7), and the
        // first Nesterov step moves by lr (1 + mu) times it.
        const double g = -0.03 * (i % 7);
        ASSERT_NEAR(p[i], start[i] - 0.7 * 1.9 * g, 1e-5) << i;
    }
    std::vector<float> both(2 * n);
    comm.all_gather(Tensor(both.data(), DType::F32, {2 * n}), Tensor(p.data(), DType::F32, {n}));
    EXPECT_EQ(std::memcmp(both.data(), both.data() + n, n * 4), 0);
}

TEST(OuterOptimizerMpi, CompressedOuterGradientsLeaveEveryRankOnTheSameAnchor) {
    MpiCommunicator& comm = world();
    const int64_t n = 4096;
    std::vector<float> p = rank_input(0, n, 60);
    GradientCompressor int8(parse_compression("int8"), n, {}, 1);
    OuterOptimizer outer(LocalStepsOptions{1, 0.7, 0.9}, Tensor(p.data(), DType::F32, {n}), comm, &int8);
    for (int round = 0; round < 3; ++round) {
        const std::vector<float> change = rank_input(comm.rank(), n, 70 + round);
        for (int64_t i = 0; i < n; ++i) p[i] += 0.01f * change[i];
        ASSERT_TRUE(outer.after_inner_step());
        std::vector<float> both(2 * n);
        comm.all_gather(Tensor(both.data(), DType::F32, {2 * n}), Tensor(p.data(), DType::F32, {n}));
        ASSERT_EQ(std::memcmp(both.data(), both.data() + n, n * 4), 0) << round;
    }
    EXPECT_EQ(int8.payload_bytes_total(), 3u * (n + 4 * (n / 256)));
}

}  // namespace
}  // namespace tandem::dist::test

// Compressed all-reduce on two ranks: the same bits on every rank, equal to the rank-order sum
// of what each rank's codec transmits (computed here for both ranks on one process), and
// PowerSGD exact when the summed gradient's rank is within R.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "dist/compression.h"
#include "dist/mpi/mpi_world.h"

namespace tandem::dist::test {
namespace {

// What `rank`'s codec transmits for its input: its output on a world of one.
std::vector<float> transmitted(const CompressionSpec& spec, int rank, int64_t n) {
    LocalCommunicator alone;
    GradientCompressor codec(spec, n, {}, 1);
    std::vector<float> g = rank_input(rank, n);
    codec.all_reduce(alone, Tensor(g.data(), DType::F32, {n}));
    return g;
}

void expect_same_on_every_rank(MpiCommunicator& comm, const std::vector<float>& x) {
    const int64_t n = static_cast<int64_t>(x.size());
    std::vector<float> all(comm.size() * n);
    comm.all_gather(Tensor(all.data(), DType::F32, {comm.size() * n}), Tensor(const_cast<float*>(x.data()), DType::F32, {n}));
    for (int r = 1; r < comm.size(); ++r) EXPECT_EQ(std::memcmp(all.data(), all.data() + r * n, n * 4), 0) << r;
}

TEST(CompressedAllReduce, ElementwiseCodecsSumWhatEachRankTransmits) {
    MpiCommunicator& comm = world();
    const int64_t n = 1000;
    for (const char* name : {"none", "bf16", "int8"}) {
        const CompressionSpec spec = parse_compression(name);
        GradientCompressor codec(spec, n, {}, 1);
        std::vector<float> g = rank_input(comm.rank(), n);
        const uint64_t sent_before = comm.bytes_sent();
        codec.all_reduce(comm, Tensor(g.data(), DType::F32, {n}));
        const std::vector<float> a = transmitted(spec, 0, n), b = transmitted(spec, 1, n);
        for (int64_t i = 0; i < n; ++i) ASSERT_EQ(g[i], static_cast<float>(double(a[i]) + b[i])) << name << " " << i;
        expect_same_on_every_rank(comm, g);
        // On two ranks each rank sends its payload once (none: half the vector, twice), and the
        // check above sent the f32 result once.
        EXPECT_EQ(comm.bytes_sent() - sent_before - 4 * n, codec.payload_bytes_last()) << name;
    }
}

TEST(CompressedAllReduce, PowerSgdOfLowRankGradientsIsTheirSum) {
    MpiCommunicator& comm = world();
    // Each rank's [24, 20] gradient has rank 1 (u_r v_rᵀ); their sum has rank 2 = R.
    const int64_t rows = 24, cols = 20, n = rows * cols + 7;
    std::vector<float> u[2], v[2], want(n, 0.0f);
    for (int r = 0; r < 2; ++r) {
        u[r] = rank_input(r, rows, 40);
        v[r] = rank_input(r, cols, 41);
    }
    std::vector<float> g(n);
    for (int64_t i = 0; i < rows; ++i)
        for (int64_t j = 0; j < cols; ++j) {
            g[i * cols + j] = u[comm.rank()][i] * v[comm.rank()][j];
            want[i * cols + j] = u[0][i] * v[0][j] + u[1][i] * v[1][j];
        }
    for (int64_t i = rows * cols; i < n; ++i) {
        g[i] = 1.0f + comm.rank();
        want[i] = 3.0f;
    }
    GradientCompressor codec(parse_compression("powersgd:2"), n, {{0, rows, cols}}, 17);
    codec.all_reduce(comm, Tensor(g.data(), DType::F32, {n}));
    for (int64_t i = 0; i < n; ++i) ASSERT_NEAR(g[i], want[i], 1e-4) << i;
    expect_same_on_every_rank(comm, g);
}

}  // namespace
}  // namespace tandem::dist::test

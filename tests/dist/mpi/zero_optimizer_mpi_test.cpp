// ZeRO-1 on two ranks against the plain data-parallel update (all-reduce, then AdamW over the
// whole buffer on every rank): the reduced gradient of each rank's range, the weights and the
// gathered moments bitwise equal, the norm to rounding, and each rank holding its range's bytes.
// An odd number of parameters, so that the last rank's extra element takes its own path.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "backend/registry.h"
#include "common/odd_layout.h"
#include "dist/mpi/mpi_world.h"
#include "train/zero_optimizer.h"

namespace tandem::dist::test {
namespace {

using train::AdamW;
using train::ParamRange;
using train::ZeroAdamW;

bool same_bits(const void* a, const void* b, size_t bytes) { return std::memcmp(a, b, bytes) == 0; }

TEST(ZeroAdamW, TwoRanksUpdateLikeAllReduceAndOneAdamW) {
    MpiCommunicator& comm = world();
    ASSERT_EQ(comm.size(), 2);
    backend::Backend& cpu = backend::get_backend("cpu");
    const model::ParamLayout layout = testing::odd_param_layout();
    const int64_t n = layout.n_params();
    const train::AdamWConfig config{.weight_decay = 0.1f, .grad_clip = 1.0f};
    const ParamRange mine = train::zero_shard(n, comm.rank(), comm.size());
    AdamW plain(cpu, layout, DType::F32, config);
    AdamW shard(cpu, layout, DType::F32, config, mine);
    ZeroAdamW zero(shard, comm);

    std::vector<float> plain_params = rank_input(0, n, 5), zero_params = plain_params;  // rank 0's, everywhere
    for (int step = 0; step < 3; ++step) {
        std::vector<float> plain_grads = rank_input(comm.rank(), n, 40 + step), zero_grads = plain_grads;
        comm.all_reduce(Tensor(plain_grads.data(), DType::F32, {n}));
        const double plain_norm = plain.grad_norm(Tensor(plain_grads.data(), DType::F32, {n}));
        plain.update(Tensor(plain_params.data(), DType::F32, {n}), Tensor(plain_grads.data(), DType::F32, {n}),
                     1e-2f, plain_norm);

        const Tensor grads(zero_grads.data(), DType::F32, {n});
        zero.reduce_gradients(grads);
        EXPECT_TRUE(same_bits(zero_grads.data() + mine.begin, plain_grads.data() + mine.begin, mine.count * 4))
            << "rank " << comm.rank() << ", step " << step;
        const double zero_norm = zero.grad_norm(grads);
        ASSERT_GT(plain_norm, 1.0);  // clipped: the norm reaches the update
        EXPECT_NEAR(zero_norm, plain_norm, 1e-12 * plain_norm) << "step " << step;
        zero.update(Tensor(zero_params.data(), DType::F32, {n}), grads, 1e-2f, zero_norm);
        EXPECT_TRUE(same_bits(zero_params.data(), plain_params.data(), n * 4))
            << "rank " << comm.rank() << ", step " << step;
    }

    EXPECT_EQ(zero.state_bytes(), size_t(mine.count) * 8);
    EXPECT_EQ(mine.count, comm.rank() == 0 ? 106 : 107);  // 213 elements
    EXPECT_EQ(zero.state_bytes_unsharded(), plain.state_bytes());
    std::vector<float> m, v;
    if (comm.rank() == 0) {
        zero.gather_moments(&m, &v);
        ASSERT_EQ(int64_t(m.size()), n);
        EXPECT_TRUE(same_bits(m.data(), plain.m().data, n * 4));
        EXPECT_TRUE(same_bits(v.data(), plain.v().data, n * 4));
    } else {
        zero.gather_moments(nullptr, nullptr);
    }
}

}  // namespace
}  // namespace tandem::dist::test

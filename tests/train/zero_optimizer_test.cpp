// ZeRO-1's arithmetic on one process: shard bounds for sizes the ranks do not divide, AdamW over
// ranges that together update bit for bit like one AdamW over the whole buffer, ZeroAdamW on one
// rank equal to plain AdamW bitwise, and checkpoints holding the whole moments, which any range
// loads its part of.
#include "train/zero_optimizer.h"

#include <gtest/gtest.h>

#include <cstring>

#include "backend/registry.h"
#include "common/error_message.h"
#include "common/odd_layout.h"
#include "common/temp_dir.h"
#include "common/test_util.h"
#include "train/checkpoint.h"

namespace tandem::train {
namespace {

using testing::odd_param_layout;
using testing::random_normal;

backend::Backend& cpu() { return backend::get_backend("cpu"); }

const AdamWConfig kConfig{.weight_decay = 0.1f, .grad_clip = 1.0f};

Tensor host(std::vector<float>& x) { return Tensor(x.data(), DType::F32, {int64_t(x.size())}); }

std::vector<float> to_host(Tensor t) {
    std::vector<float> out(t.numel());
    cpu().copy_to_host(out.data(), t.data, t.bytes());
    return out;
}

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
    return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

TEST(ZeroShard, EqualPartsAndTheRemainderOnTheLastRank) {
    EXPECT_EQ(zero_shard(10, 0, 3).begin, 0);
    EXPECT_EQ(zero_shard(10, 0, 3).count, 3);
    EXPECT_EQ(zero_shard(10, 1, 3).begin, 3);
    EXPECT_EQ(zero_shard(10, 1, 3).count, 3);
    EXPECT_EQ(zero_shard(10, 2, 3).begin, 6);
    EXPECT_EQ(zero_shard(10, 2, 3).count, 4);
    // Fewer elements than ranks: the last rank owns them all.
    EXPECT_EQ(zero_shard(2, 1, 3).count, 0);
    EXPECT_EQ(zero_shard(2, 2, 3).begin, 0);
    EXPECT_EQ(zero_shard(2, 2, 3).count, 2);
    for (int64_t n : {0, 1, 5, 212, 4097, 137024}) {
        for (int n_ranks : {1, 2, 3, 8}) {
            int64_t end = 0;
            for (int r = 0; r < n_ranks; ++r) {
                const ParamRange s = zero_shard(n, r, n_ranks);
                EXPECT_EQ(s.begin, end) << n << " over " << n_ranks << ", rank " << r;
                EXPECT_EQ(s.count, r + 1 < n_ranks ? n / n_ranks : n / n_ranks + n % n_ranks)
                    << n << " over " << n_ranks << ", rank " << r;
                end = s.begin + s.count;
            }
            EXPECT_EQ(end, n) << n << " over " << n_ranks;
        }
    }
}

// What ZeRO's ranks do together, without the communication: each range updated by its own AdamW
// with the whole gradient's norm equals one AdamW's update, bit for bit, over steps.
TEST(ZeroAdamW, RangesUpdatedApartEqualTheWholeUpdateBitwise) {
    const model::ParamLayout layout = odd_param_layout();
    const int64_t n = layout.n_params();
    for (int n_ranks : {2, 3, 8}) {
        std::vector<float> whole_params = random_normal(n, 1, 0.1f), split_params = whole_params;
        AdamW whole(cpu(), layout, DType::F32, kConfig);
        std::vector<std::unique_ptr<AdamW>> ranges;
        for (int r = 0; r < n_ranks; ++r)
            ranges.push_back(std::make_unique<AdamW>(cpu(), layout, DType::F32, kConfig, zero_shard(n, r, n_ranks)));
        for (int step = 0; step < 3; ++step) {
            std::vector<float> grads = random_normal(n, 10 + step, 0.5f);
            const double norm = whole.grad_norm(host(grads));  // > grad_clip: the update clips
            ASSERT_GT(norm, 1.0);
            whole.update(host(whole_params), host(grads), 1e-2f, norm);
            for (auto& range : ranges) {
                const ParamRange r = range->range();
                range->update(host(split_params).slice(r.begin, r.count), host(grads).slice(r.begin, r.count),
                              1e-2f, norm);
            }
        }
        EXPECT_TRUE(same_bits(whole_params, split_params)) << n_ranks << " ranks";
        std::vector<float> m, v;
        for (auto& range : ranges) {
            const std::vector<float> rm = to_host(range->m()), rv = to_host(range->v());
            m.insert(m.end(), rm.begin(), rm.end());
            v.insert(v.end(), rv.begin(), rv.end());
            EXPECT_EQ(range->state_bytes(), size_t(range->range().count) * 8);
        }
        EXPECT_TRUE(same_bits(to_host(whole.m()), m)) << n_ranks << " ranks";
        EXPECT_TRUE(same_bits(to_host(whole.v()), v)) << n_ranks << " ranks";
    }
}

TEST(ZeroAdamW, OneRankIsPlainAdamWBitwise) {
    const model::ParamLayout layout = odd_param_layout();
    const int64_t n = layout.n_params();
    dist::LocalCommunicator comm;
    AdamW plain(cpu(), layout, DType::F32, kConfig);
    AdamW shard(cpu(), layout, DType::F32, kConfig, zero_shard(n, 0, 1));
    ZeroAdamW zero(shard, comm);
    EXPECT_EQ(zero.state_bytes(), size_t(n) * 8);
    EXPECT_EQ(zero.state_bytes_unsharded(), size_t(n) * 8);
    std::vector<float> plain_params = random_normal(n, 2, 0.1f), zero_params = plain_params;
    for (int step = 0; step < 4; ++step) {
        std::vector<float> grads = random_normal(n, 20 + step, step == 2 ? 0.01f : 0.5f);  // one unclipped
        const double plain_norm = plain.step(host(plain_params), host(grads), 3e-3f);
        zero.reduce_gradients(host(grads));
        const double zero_norm = zero.grad_norm(host(grads));
        EXPECT_EQ(plain_norm, zero_norm) << "step " << step;
        zero.update(host(zero_params), host(grads), 3e-3f, zero_norm);
    }
    EXPECT_TRUE(same_bits(plain_params, zero_params));
    std::vector<float> m, v;
    zero.gather_moments(&m, &v);
    EXPECT_TRUE(same_bits(to_host(plain.m()), m));
    EXPECT_TRUE(same_bits(to_host(plain.v()), v));
    EXPECT_EQ(shard.step_count(), 4);
}

TEST(ZeroAdamW, RefusesMomentsThatAreNotF32) {
    const model::ParamLayout layout = odd_param_layout();
    dist::LocalCommunicator comm;
    AdamW wide(cpu(), layout, DType::F64, kConfig);
    const std::string error = testing::error_message([&] { ZeroAdamW zero(wide, comm); });
    EXPECT_NE(error.find("zero=1"), std::string::npos) << error;
    EXPECT_NE(error.find("f64"), std::string::npos) << error;
}

// A checkpoint holds the whole moments whatever wrote it; an AdamW over a range loads its part,
// from the directory and from a snapshot, and a snapshot of a range restores that range.
TEST(ZeroAdamW, RangesLoadTheirPartOfTheWholeMoments) {
    model::Model model(model::preset_config("qwen3-tiny"), cpu(), DType::F32, 1, 4);
    model.init(5);
    const int64_t n = model.layout().n_params();
    AdamW whole(cpu(), model.layout(), DType::F32, kConfig);
    for (int step = 0; step < 2; ++step) {
        std::vector<float> grads = random_normal(n, 30 + step, 0.1f);
        cpu().copy_to_device(model.grads().data, grads.data(), grads.size() * 4);
        whole.step(model.params(), model.grads(), 1e-3f);
    }
    testing::TempDir dir;
    const std::string saved = save_checkpoint(dir.path(), model, whole, TrainingState{.step = 2}, "{}");
    const std::vector<float> whole_m = to_host(whole.m()), whole_v = to_host(whole.v());

    const ParamRange r = zero_shard(n, 1, 3);
    AdamW range(cpu(), model.layout(), DType::F32, kConfig, r);
    EXPECT_EQ(load_checkpoint_state(saved, range).step, 2);
    EXPECT_EQ(range.step_count(), 2);
    const auto part = [&](const std::vector<float>& x) {
        return std::vector<float>(x.begin() + r.begin, x.begin() + r.begin + r.count);
    };
    EXPECT_TRUE(same_bits(to_host(range.m()), part(whole_m)));
    EXPECT_TRUE(same_bits(to_host(range.v()), part(whole_v)));

    AdamW from_snapshot(cpu(), model.layout(), DType::F32, kConfig, r);
    restore_snapshot(take_snapshot(model, whole, {}, "{}"), model, from_snapshot);
    EXPECT_TRUE(same_bits(to_host(from_snapshot.v()), part(whole_v)));
    const CheckpointSnapshot of_range = take_snapshot(model, range, {}, "{}");
    EXPECT_EQ(int64_t(of_range.exp_avg.size()), r.count);
    AdamW again(cpu(), model.layout(), DType::F32, kConfig, r);
    restore_snapshot(of_range, model, again);
    EXPECT_TRUE(same_bits(to_host(again.m()), part(whole_m)));
    EXPECT_EQ(again.step_count(), 2);
}

}  // namespace
}  // namespace tandem::train

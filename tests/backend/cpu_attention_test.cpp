// The cpu backend's attention with its products on tandem's kernels (against each head's keys
// and values packed once) held against the same attention on OpenBLAS's sgemm, forward and
// backward, at shapes that cross the kernels' edges: heads of 8 to 64 (a partial 48-column
// tile on AVX-512), lengths that are not multiples of the tiles, several query blocks, keys past
// one K slice (384 on AVX2) and the 128-row blocks from T = 1024, grouped heads through both of
// backward's task layouts. (attention_test.cpp holds the backend, whichever products it picked,
// against reference/.) A kernel this CPU cannot run is skipped, saying so.
#include <gtest/gtest.h>

#include <vector>

#include "backend/cpu/kernels.h"
#include "common/test_util.h"
#include "own_kernels.h"

namespace tandem::backend::cpu {
namespace {

struct Heads {
    int64_t B, T, H, Hkv, D;
};

// out, lse and dqkv of one forward and backward with the products on `kernel`.
struct Results {
    std::vector<float> out, lse, dqkv;
};

Results run_attention(GemmKernel kernel, const Heads& h) {
    const int64_t W = (h.H + 2 * h.Hkv) * h.D;
    std::vector<float> qkv = testing::random_normal(h.B * h.T * W, 1 + h.T);
    for (float& x : qkv) x *= 1.5f;  // scores of a few units: peaked and flat rows both
    std::vector<float> dout = testing::random_normal(h.B * h.T * h.H * h.D, 2);
    Results r{std::vector<float>(h.B * h.T * h.H * h.D), std::vector<float>(h.B * h.H * h.T),
              testing::random_normal(h.B * h.T * W, 3)};  // dqkv is overwritten
    const Tensor t_qkv(qkv.data(), DType::F32, {h.B, h.T, W});
    const Tensor t_out(r.out.data(), DType::F32, {h.B, h.T, h.H * h.D});
    const Tensor t_lse(r.lse.data(), DType::F32, {h.B, h.H, h.T});
    attention_forward_on(kernel, t_out, t_lse, t_qkv, h.H, h.Hkv);
    attention_backward_on(kernel, Tensor(r.dqkv.data(), DType::F32, {h.B, h.T, W}),
                          Tensor(dout.data(), DType::F32, {h.B, h.T, h.H * h.D}), t_qkv, t_out,
                          t_lse, h.H, h.Hkv);
    return r;
}

class OwnAttention : public OnEachOwnKernel {};

TEST_P(OwnAttention, MatchesAttentionOnOpenBlas) {
    const Heads cases[] = {
        {2, 1, 3, 3, 8},     // one position
        {2, 33, 6, 2, 16},   // grouped heads, a partial tile, one query block
        {2, 70, 4, 4, 48},   // two query blocks, one AVX-512 tile wide
        {1, 200, 2, 1, 64},  // four blocks, a partial AVX-512 tile, keys not a multiple of 16
        {1, 400, 2, 2, 64},  // keys past one AVX2 K slice
        {1, 1030, 1, 1, 8},  // 128-row blocks, three K slices
        {2, 20, 32, 16, 8},  // backward with one task per (batch, kv head)
    };
    for (const Heads& h : cases) {
        SCOPED_TRACE(::testing::Message() << "B " << h.B << " T " << h.T << " H " << h.H
                                          << " Hkv " << h.Hkv << " D " << h.D);
        const Results own = run_attention(GetParam(), h),
                      blas = run_attention(GemmKernel::openblas, h);
        // The same sums in another order: f32 rounding, far below the reference's tolerance.
        EXPECT_LT(testing::relative_error(own.out, blas.out), 1e-5);
        EXPECT_LT(testing::relative_error(own.lse, blas.lse), 1e-6);
        EXPECT_LT(testing::relative_error(own.dqkv, blas.dqkv), 1e-5);
    }
}

INSTANTIATE_TEST_SUITE_P(Kernels, OwnAttention, kOwnKernels, own_kernel_name);

}  // namespace
}  // namespace tandem::backend::cpu

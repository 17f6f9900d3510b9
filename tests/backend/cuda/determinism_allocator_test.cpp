// Properties of the cuda backend beyond matching reference/: the same inputs give the same bits
// on every run (no atomics, fixed reduction orders, one cuBLASLt algorithm per problem); the
// caching allocator stops calling cudaMalloc once sizes repeat; errors name their cause.
#include <gtest/gtest.h>

#include <cstring>

#ifdef TANDEM_HAS_CUDA
#include "backend/cuda/cuda_backend.h"
#endif
#include "backend/cuda/cuda_test_util.h"

namespace tandem::testing {
namespace {

// Runs fn twice on fresh copies of the same inputs and compares the outputs byte for byte.
template <typename Fn>
void expect_bitwise_repeatable(const std::string& what, Fn&& fn) {
    const std::vector<std::vector<unsigned char>> first = fn(), second = fn();
    ASSERT_EQ(first.size(), second.size());
    for (size_t i = 0; i < first.size(); ++i)
        EXPECT_TRUE(first[i] == second[i]) << what << ": output " << i << " differs between runs";
}

TEST(CudaDeterminism, RepeatedRunsAreBitwiseIdentical) {
    TANDEM_SKIP_WITHOUT_CUDA();
    backend::Backend& be = cuda_backend();
    for (DType dtype : {DType::F32, DType::BF16}) {
        const std::string dt(dtype_name(dtype));
        const int64_t B = 2, T = 97, H = 6, Hkv = 2, D = 64, W = (H + 2 * Hkv) * D, C = 384;
        const int64_t N = B * T, V = 1000;
        expect_bitwise_repeatable("attention " + dt, [&] {
            DeviceTensor qkv = DeviceTensor::from(be, random_normal(B * T * W, 1), {B, T, W}, dtype);
            DeviceTensor out(be, dtype, {B, T, H * D}), lse(be, DType::F32, {B, H, T});
            DeviceTensor dout = DeviceTensor::from(be, random_normal(B * T * H * D, 2), {B, T, H * D}, dtype);
            DeviceTensor dqkv(be, dtype, {B, T, W});
            be.attention_forward(out, lse, qkv, H, Hkv);
            be.attention_backward(dqkv, dout, qkv, out, lse, H, Hkv);
            return std::vector{bytes_of(out), bytes_of(lse), bytes_of(dqkv)};
        });
        expect_bitwise_repeatable("embedding and norms " + dt, [&] {
            std::vector<int32_t> ids = random_ints(N, 3, 0, 20);  // many repeated tokens
            DeviceTensor tokens = DeviceTensor::from_ints(be, ids, {B, T});
            DeviceTensor dout = DeviceTensor::from(be, random_normal(N * C, 4), {B, T, C}, dtype);
            DeviceTensor dwte = DeviceTensor::from(be, random_normal(50 * C, 5), {50, C}, dtype);
            DeviceTensor dwpe = DeviceTensor::from(be, random_normal(T * C, 6), {T, C}, dtype);
            be.embedding_backward(dwte, dwpe, dout, tokens);
            DeviceTensor x = DeviceTensor::from(be, random_normal(N * C, 7), {N, C}, dtype);
            DeviceTensor w = DeviceTensor::from(be, random_normal(C, 8), {C}, dtype);
            DeviceTensor bias = DeviceTensor::from(be, random_normal(C, 9), {C}, dtype);
            DeviceTensor y(be, dtype, {N, C}), mean(be, DType::F32, {N}), rstd(be, DType::F32, {N});
            be.layer_norm_forward(y, mean, rstd, x, w, bias, 1e-5f);
            DeviceTensor dx = DeviceTensor::from(be, random_normal(N * C, 10), {N, C}, dtype);
            DeviceTensor dw = DeviceTensor::from(be, random_normal(C, 11), {C}, dtype);
            DeviceTensor db = DeviceTensor::from(be, random_normal(C, 12), {C}, dtype);
            be.layer_norm_backward(dx, dw, db, y, x, w, mean, rstd);
            return std::vector{bytes_of(dwte), bytes_of(dwpe), bytes_of(dx), bytes_of(dw),
                               bytes_of(db)};
        });
        expect_bitwise_repeatable("matmul, loss and sums " + dt, [&] {
            DeviceTensor a = DeviceTensor::from(be, random_normal(N * C, 13), {N, C}, dtype);
            DeviceTensor wt = DeviceTensor::from(be, random_normal(V * C, 14), {V, C}, dtype);
            DeviceTensor logits(be, dtype, {N, V});
            be.matmul(logits, a, wt, Tensor{}, false, true, false);
            DeviceTensor targets = DeviceTensor::from_ints(be, random_ints(N, 15, 0, V - 1), {N});
            DeviceTensor losses(be, DType::F32, {N}), lse(be, DType::F32, {N});
            be.cross_entropy_forward(losses, lse, logits, targets, -100);
            const double total = be.sum(losses), sq = be.sum_squares(logits);
            be.cross_entropy_backward(logits, logits, lse, targets, {}, 1.0f / N, -100);
            DeviceTensor dbias = DeviceTensor::from(be, random_normal(V, 16), {V}, dtype);
            be.bias_backward(dbias, logits);
            std::vector<unsigned char> sums(16);
            std::memcpy(sums.data(), &total, 8);
            std::memcpy(sums.data() + 8, &sq, 8);
            return std::vector{bytes_of(losses), bytes_of(logits), bytes_of(dbias), sums};
        });
    }
}

TEST(CudaAllocator, SteadyStateAllocationDoesNotGrowDeviceMemory) {
    TANDEM_SKIP_WITHOUT_CUDA();
    backend::Backend& be = cuda_backend();
    be.synchronize();
    auto one_step = [&] {  // the sizes of a training step, allocated and freed
        for (size_t bytes : {size_t(1), size_t(1000), size_t(4096), size_t(3) << 20,
                             size_t(77) << 20, size_t(12345)}) {
            backend::Buffer a(be, bytes), b(be, bytes);
            be.fill_zero(Tensor(a.data(), DType::F32, {int64_t(bytes / 4)}, Device::Cuda));
        }
        // a kernel that takes scratch memory
        DeviceTensor x = DeviceTensor::from(be, random_normal(10000, 1), {10000});
        (void)be.sum_squares(x);
    };
#ifdef TANDEM_HAS_CUDA
    one_step();
    const backend::CudaMemoryStats before = backend::cuda_memory_stats(be);
    for (int i = 0; i < 100; ++i) one_step();
    const backend::CudaMemoryStats after = backend::cuda_memory_stats(be);
    EXPECT_EQ(after.n_device_mallocs, before.n_device_mallocs);
    EXPECT_EQ(after.reserved_bytes, before.reserved_bytes);
    EXPECT_EQ(after.in_use_bytes, before.in_use_bytes);
#endif
}

TEST(CudaAllocator, AllocationsAreAlignedAndDistinct) {
    TANDEM_SKIP_WITHOUT_CUDA();
    backend::Backend& be = cuda_backend();
    std::vector<backend::Buffer> buffers;
    for (size_t bytes : {size_t(1), size_t(63), size_t(64), size_t(513), size_t(1) << 21})
        for (int i = 0; i < 3; ++i) buffers.emplace_back(be, bytes);
    for (size_t i = 0; i < buffers.size(); ++i) {
        EXPECT_EQ(reinterpret_cast<uintptr_t>(buffers[i].data()) % 64, 0u);
        for (size_t j = 0; j < i; ++j) EXPECT_NE(buffers[i].data(), buffers[j].data());
    }
}

TEST(CudaAllocator, TooLargeAllocationThrowsErrorNamingTheSize) {
    TANDEM_SKIP_WITHOUT_CUDA();
    backend::Backend& be = cuda_backend();
    const size_t huge = size_t(1) << 50;  // 1 PiB
    try {
        be.alloc(huge);
        FAIL() << "allocating 1 PiB succeeded";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find(std::to_string(huge)), std::string::npos) << e.what();
    }
    // The backend still works afterwards.
    DeviceTensor x = DeviceTensor::from(be, {1.0f, 2.0f, 3.0f}, {3});
    EXPECT_EQ(be.sum(x), 6.0);
}

TEST(CudaBackend, ReportsNameDeviceAndDtypes) {
    TANDEM_SKIP_WITHOUT_CUDA();
    backend::Backend& be = cuda_backend();
    EXPECT_EQ(be.name(), "cuda");
    EXPECT_EQ(be.device(), Device::Cuda);
    EXPECT_TRUE(be.supports(DType::F32));
    EXPECT_TRUE(be.supports(DType::BF16));
    EXPECT_FALSE(be.supports(DType::F64));
}

}  // namespace
}  // namespace tandem::testing

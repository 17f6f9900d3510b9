// The timing table of docs/CUDA_NOTES.md: disabled by default (it takes seconds and needs the
// whole GPU); run it with --gtest_also_run_disabled_tests --gtest_filter='CudaTiming.*'.
// Each row is the median of many runs timed with CUDA events after warm-up, on random data.
#include <gtest/gtest.h>

#include <cstdio>

#include "backend/cuda/cuda_test_util.h"
#ifdef TANDEM_HAS_CUDA
#include "backend/cuda/cuda_backend.h"
#endif

namespace tandem::testing {
namespace {

#ifdef TANDEM_HAS_CUDA
void row(const char* what, double ms, double flops, double bytes) {
    std::printf("| %-44s | %9.3f | %8.1f | %8.1f |\n", what, ms,
                flops > 0 ? flops / (ms * 1e-3) / 1e12 : 0.0,
                bytes > 0 ? bytes / (ms * 1e-3) / 1e9 : 0.0);
}
#endif

TEST(CudaTiming, DISABLED_Table) {
    TANDEM_SKIP_WITHOUT_CUDA();
#ifdef TANDEM_HAS_CUDA
    backend::Backend& be = cuda_backend();
    const int n_runs = 50;
    std::printf("| %-44s | %9s | %8s | %8s |\n", "kernel", "ms", "TFLOP/s", "GB/s");
    std::printf("|%s|%s|%s|%s|\n", std::string(46, '-').c_str(), std::string(11, '-').c_str(),
                std::string(10, '-').c_str(), std::string(10, '-').c_str());
    {  // memory bandwidth ceiling: a 1 GiB device-to-device copy (bytes read + written)
        const size_t bytes = size_t(1) << 30;
        backend::Buffer src(be, bytes), dst(be, bytes);
        be.fill_zero(Tensor(src.data(), DType::F32, {int64_t(bytes / 4)}, Device::Cuda));
        const double ms = cuda_median_ms(be, [&] { be.copy(dst.data(), src.data(), bytes); }, 20);
        row("copy 1 GiB d2d (bandwidth ceiling)", ms, 0, 2.0 * bytes);
    }
    for (DType dtype : {DType::BF16, DType::F32}) {
        const int64_t n = 4096;
        DeviceTensor a = DeviceTensor::from(be, random_normal(n * n, 1), {n, n}, dtype);
        DeviceTensor b = DeviceTensor::from(be, random_normal(n * n, 2), {n, n}, dtype);
        DeviceTensor out(be, dtype, {n, n});
        for (bool tb : {false, true}) {
            const double ms = cuda_median_ms(
                be, [&] { be.matmul(out, a, b, Tensor{}, false, tb, false); }, n_runs);
            const std::string what = "matmul " + std::string(dtype_name(dtype)) + " 4096^3" +
                                     (tb ? " (b transposed)" : "");
            row(what.c_str(), ms, 2.0 * n * n * n, 3.0 * n * n * dtype_size(dtype));
        }
    }
    {  // GPT-2 124M attention: B=8, T=1024, H=12, D=64, bf16
        const int64_t B = 8, T = 1024, H = 12, D = 64, W = 3 * H * D;
        const DType dtype = DType::BF16;
        DeviceTensor qkv = DeviceTensor::from(be, random_normal(B * T * W, 3), {B, T, W}, dtype);
        DeviceTensor out(be, dtype, {B, T, H * D}), lse(be, DType::F32, {B, H, T});
        DeviceTensor dout = DeviceTensor::from(be, random_normal(B * T * H * D, 4), {B, T, H * D}, dtype);
        DeviceTensor dqkv(be, dtype, {B, T, W});
        const double causal_pairs = double(B) * H * T * (T + 1) / 2;
        const double fwd_flops = 4.0 * causal_pairs * D;  // q.k and p.v
        const double io = double(B * T * W + B * T * H * D) * 2;
        double ms = cuda_median_ms(be, [&] { be.attention_forward(out, lse, qkv, H, H); }, n_runs);
        row("attention fwd bf16 B8 T1024 H12 D64", ms, fwd_flops, io);
        ms = cuda_median_ms(
            be, [&] { be.attention_backward(dqkv, dout, qkv, out, lse, H, H); }, 20);
        // backward: q.k recomputed, dout.v, dv, dk, dq: 5 products of the forward's 2
        row("attention bwd bf16 B8 T1024 H12 D64", ms, 2.5 * fwd_flops, 2.0 * io);
    }
    {  // cross-entropy at GPT-2 shapes: 8192 rows of 50304 logits, bf16
        const int64_t N = 8192, V = 50304;
        DeviceTensor logits = DeviceTensor::from(be, random_normal(N * V, 5, 2.0f), {N, V}, DType::BF16);
        DeviceTensor targets = DeviceTensor::from_ints(be, random_ints(N, 6, 0, V - 1), {N});
        DeviceTensor losses(be, DType::F32, {N}), lse(be, DType::F32, {N});
        DeviceTensor dlogits(be, DType::BF16, {N, V});
        double ms = cuda_median_ms(
            be, [&] { be.cross_entropy_forward(losses, lse, logits, targets, -100); }, n_runs);
        row("cross_entropy fwd bf16 8192x50304", ms, 0, double(N) * V * 2);
        ms = cuda_median_ms(be, [&] {
            be.cross_entropy_backward(dlogits, logits, lse, targets, {}, 1.0f / N, -100);
        }, n_runs);
        row("cross_entropy bwd bf16 8192x50304", ms, 0, 2.0 * N * V * 2);
    }
    {  // GPT-2 sized rows: 8192 x 768, bf16
        const int64_t N = 8192, C = 768;
        const DType dtype = DType::BF16;
        DeviceTensor x = DeviceTensor::from(be, random_normal(N * C, 7), {N, C}, dtype);
        DeviceTensor w = DeviceTensor::from(be, random_normal(C, 8), {C}, dtype);
        DeviceTensor bias = DeviceTensor::from(be, random_normal(C, 9), {C}, dtype);
        DeviceTensor y(be, dtype, {N, C}), mean(be, DType::F32, {N}), rstd(be, DType::F32, {N});
        DeviceTensor dx(be, dtype, {N, C}), dw(be, dtype, {C}), db(be, dtype, {C});
        double ms = cuda_median_ms(
            be, [&] { be.layer_norm_forward(y, mean, rstd, x, w, bias, 1e-5f); }, n_runs);
        row("layer_norm fwd bf16 8192x768", ms, 0, 2.0 * N * C * 2);
        ms = cuda_median_ms(
            be, [&] { be.layer_norm_backward(dx, dw, db, y, x, w, mean, rstd); }, n_runs);
        row("layer_norm bwd bf16 8192x768", ms, 0, 4.0 * N * C * 2);
        ms = cuda_median_ms(be, [&] { be.gelu_forward(y, x); }, n_runs);
        row("gelu fwd bf16 8192x768", ms, 0, 2.0 * N * C * 2);
        std::vector<int32_t> ids = random_ints(N, 10, 0, 50256);
        DeviceTensor tokens = DeviceTensor::from_ints(be, ids, {8, 1024});
        DeviceTensor dwte(be, dtype, {50304, C}), dwpe(be, dtype, {1024, C});
        DeviceTensor dout = DeviceTensor::from(be, random_normal(N * C, 11), {8, 1024, C}, dtype);
        ms = cuda_median_ms(be, [&] { be.embedding_backward(dwte, dwpe, dout, tokens); }, 10);
        row("embedding bwd bf16 8x1024x768, V=50304", ms, 0, 3.0 * N * C * 2);
    }
#endif
}

}  // namespace
}  // namespace tandem::testing

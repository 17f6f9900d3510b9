// Times the kernels of one backend at the shapes of a GPT-2 small training step (B = 4,
// T = 1024) and prints one row per kernel: best of a few runs, with the rate it reaches.
// Usage: kernels_bench [backend] (default cpu). Results go to docs/PERFORMANCE.md.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "backend/buffer.h"
#include "backend/registry.h"
#include "core/rng.h"

namespace {

using tandem::DType;
using tandem::Tensor;
using tandem::backend::Backend;
using tandem::backend::Buffer;

// A tensor on the backend with N(0, 1) values (or token ids in [0, V) when V > 0).
struct Owned {
    Buffer buffer;
    Tensor t;
    Owned(Backend& be, tandem::Shape shape, uint32_t seed, int32_t V = 0)
        : buffer(be, static_cast<size_t>(shape.numel()) * 4),
          t(buffer.tensor(V > 0 ? DType::I32 : DType::F32, shape)) {
        std::vector<float> host(shape.numel());
        tandem::fill_normal(host.data(), shape.numel(), {.seed = seed});
        if (V > 0) {
            std::vector<int32_t> ids(host.size());
            for (size_t i = 0; i < ids.size(); ++i)
                ids[i] = static_cast<int32_t>(tandem::random_u32({.seed = seed}, i) % V);
            be.copy_to_device(t.data, ids.data(), ids.size() * 4);
        } else {
            be.copy_to_device(t.data, host.data(), host.size() * 4);
        }
    }
    operator Tensor() const { return t; }
};

template <typename Fn>
double best_ms(Backend& be, Fn&& fn, int runs = 5) {
    fn();  // warm up: first touch of the memory, BLAS thread start
    be.synchronize();
    double best = 1e30;
    for (int r = 0; r < runs; ++r) {
        const auto start = std::chrono::steady_clock::now();
        fn();
        be.synchronize();
        const std::chrono::duration<double, std::milli> took =
            std::chrono::steady_clock::now() - start;
        best = std::min(best, took.count());
    }
    return best;
}

void row(const char* kernel, const char* shape, double ms, double amount, const char* unit) {
    std::printf("| %-22s | %-26s | %9.3f | %8.1f %s |\n", kernel, shape, ms, amount / ms / 1e6,
                unit);
}

}  // namespace

int main(int argc, char** argv) {
    Backend& be = tandem::backend::get_backend(argc > 1 ? argv[1] : "cpu");
    const int64_t B = 4, T = 1024, C = 768, H = 12, D = 64, V = 50257, N = B * T, W = 3 * C;
    std::printf("backend %s\n\n| kernel | shape | ms | rate |\n|---|---|---|---|\n",
                std::string(be.name()).c_str());

    Owned x(be, {N, C}, 1), w_qkv(be, {W, C}, 2), b_qkv(be, {W}, 3), qkv(be, {N, W}, 4);
    double ms = best_ms(be, [&] { be.matmul(qkv, x, w_qkv, b_qkv, false, true, false); });
    row("matmul (qkv, bias)", "[4096,768] x [2304,768]^T", ms, 2.0 * N * W * C, "GFLOP/s");
    Owned dx(be, {N, C}, 5), dw(be, {W, C}, 6);
    ms = best_ms(be, [&] { be.matmul(dw, qkv, x, Tensor(), true, false, true); });
    row("matmul (dweight, +=)", "[4096,2304]^T x [4096,768]", ms, 2.0 * N * W * C, "GFLOP/s");

    Tensor qkv3 = qkv.t.view({B, T, W});
    Owned out(be, {B, T, C}, 7), lse(be, {B, H, T}, 8), dout(be, {B, T, C}, 9),
        dqkv(be, {B, T, W}, 10);
    const double attn_flops = 4.0 * B * H * T * T * D / 2;  // causal: half of QK^T and PV
    ms = best_ms(be, [&] { be.attention_forward(out, lse, qkv3, H, H); });
    row("attention forward", "B4 T1024 H12 D64", ms, attn_flops, "GFLOP/s");
    ms = best_ms(be, [&] { be.attention_backward(dqkv, dout, qkv3, out, lse, H, H); });
    row("attention backward", "B4 T1024 H12 D64", ms, 2.5 * attn_flops, "GFLOP/s");

    Owned ln_w(be, {C}, 11), ln_b(be, {C}, 12), mean(be, {N}, 13), rstd(be, {N}, 14),
        y(be, {N, C}, 15);
    ms = best_ms(be, [&] { be.layer_norm_forward(y, mean, rstd, x, ln_w, ln_b, 1e-5f); });
    row("layer_norm forward", "[4096,768]", ms, 2.0 * N * C * 4, "GB/s");
    Owned dln_w(be, {C}, 16), dln_b(be, {C}, 17);
    ms = best_ms(be, [&] { be.layer_norm_backward(dx, dln_w, dln_b, y, x, ln_w, mean, rstd); });
    row("layer_norm backward", "[4096,768]", ms, 4.0 * N * C * 4, "GB/s");

    Owned h(be, {N, 4 * C}, 18), g(be, {N, 4 * C}, 19);
    ms = best_ms(be, [&] { be.gelu_forward(g, h); });
    row("gelu forward", "[4096,3072]", ms, 2.0 * N * 4 * C * 4, "GB/s");
    ms = best_ms(be, [&] { be.gelu_backward(g, g, h); });
    row("gelu backward", "[4096,3072]", ms, 3.0 * N * 4 * C * 4, "GB/s");

    const int64_t R = 1024;  // rows of logits: a quarter of the step's 4096 (206 MB of f32)
    Owned logits(be, {R, V}, 20), targets(be, {R}, 21, static_cast<int32_t>(V)),
        losses(be, {R}, 22), lse_ce(be, {R}, 23);
    ms = best_ms(be, [&] { be.cross_entropy_forward(losses, lse_ce, logits, targets, -100); });
    row("cross_entropy forward", "[1024,50257]", ms, 1.0 * R * V * 4, "GB/s");
    ms = best_ms(
        be, [&] { be.cross_entropy_backward(logits, logits, lse_ce, targets, {}, 1.0f / R, -100); });
    row("cross_entropy backward", "[1024,50257] in place", ms, 2.0 * R * V * 4, "GB/s");

    const int64_t P = 124'439'808;  // GPT-2 small's parameter count
    Owned param(be, {P}, 24), grad(be, {P}, 25), m(be, {P}, 26), v(be, {P}, 27);
    be.fill_zero(v);
    ms = best_ms(be, [&] { be.adamw_update(param, grad, m, v, {.step = 10}); });
    row("adamw_update", "124M", ms, 7.0 * P * 4, "GB/s");
    ms = best_ms(be, [&] { be.sum_squares(grad); });
    row("sum_squares", "124M", ms, 1.0 * P * 4, "GB/s");
    return 0;
}

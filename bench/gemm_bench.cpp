// The products of the issue-#5 training steps, each through OpenBLAS's sgemm and through
// tandem's own product (its best kernel for this CPU, or --kernel's), interleaved (A, B, A, B,
// ...) so that both see the same machine weather; prints the median GFLOP/s of each with min and
// max, their ratio, and the largest difference between the two results relative to the largest
// |C|. With --cold, 256 MB are written between calls so that the operands come from memory, as
// they do in a training step (a model's weights are far larger than the caches).
//
//   gemm_bench [--reps 7] [--cold] [--kernel avx2|avx512] [--shape "M N K ta tb acc"]...
//
// Without --shape: the products of the steps.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <sstream>
#include <string>
#include <vector>

#include "backend/cpu/blas.h"
#include "backend/cpu/gemm.h"
#include "core/rng.h"

namespace {

using namespace tandem::backend::cpu;

struct Shape {
    int64_t M, N, K;
    bool ta, tb, acc;
};

// llama-15m 8 x 256 and gpt2-124m 4 x 64, forward and both backward products of each weight, as
// the models compute them: llama's weights are [out, in] (y = x W^T), gpt2's linear layers
// [in, out] (y = x W + b, the bias making it an accumulation); both LM heads are the tied [V, d]
// embedding.
std::vector<Shape> step_shapes() {
    std::vector<Shape> shapes;
    const auto out_in = [&](int64_t tokens, int64_t in, int64_t out) {
        shapes.push_back({tokens, out, in, false, true, false});   // y = x W^T
        shapes.push_back({tokens, in, out, false, false, false});  // dx = dy W
        shapes.push_back({out, in, tokens, true, false, true});    // dW += dy^T x
    };
    const auto in_out = [&](int64_t tokens, int64_t in, int64_t out) {
        shapes.push_back({tokens, out, in, false, false, true});  // y = b + x W
        shapes.push_back({tokens, in, out, false, true, false});  // dx = dy W^T
        shapes.push_back({in, out, tokens, true, false, true});   // dW += x^T dy
    };
    out_in(2048, 288, 32000);  // llama-15m LM head
    out_in(2048, 288, 1536);   // llama-15m gate + up
    out_in(2048, 768, 288);    // llama-15m down
    out_in(2048, 288, 864);    // llama-15m qkv
    out_in(256, 768, 50257);   // gpt2-124m LM head
    in_out(256, 768, 3072);    // gpt2-124m fc
    in_out(256, 3072, 768);    // gpt2-124m proj
    in_out(256, 768, 2304);    // gpt2-124m qkv
    return shapes;
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
    int reps = 7;
    bool cold = false;
    GemmKernel kernel = gemm_kernel_supported();
    std::vector<Shape> shapes;
    for (int i = 1; i < argc; ++i) {
        const std::string arg = argv[i];
        if (arg == "--reps" && i + 1 < argc) {
            reps = std::atoi(argv[++i]);
        } else if (arg == "--cold") {
            cold = true;
        } else if (arg == "--kernel" && i + 1 < argc) {
            const std::string name = argv[++i];
            if (name != "avx2" && name != "avx512") {
                std::fprintf(stderr, "gemm_bench: --kernel %s: expected avx2 or avx512\n",
                             name.c_str());
                return 2;
            }
            kernel = name == "avx2" ? GemmKernel::avx2 : GemmKernel::avx512;
        } else if (arg == "--shape" && i + 1 < argc) {
            Shape s{};
            int ta = 0, tb = 0, acc = 0;
            std::istringstream(argv[++i]) >> s.M >> s.N >> s.K >> ta >> tb >> acc;
            s.ta = ta, s.tb = tb, s.acc = acc;
            shapes.push_back(s);
        } else {
            std::fprintf(stderr,
                         "usage: gemm_bench [--reps N] [--cold] [--kernel avx2|avx512] "
                         "[--shape \"M N K ta tb acc\"]...\n");
            return 2;
        }
    }
    if (shapes.empty()) shapes = step_shapes();
    if (kernel == GemmKernel::openblas) {
        std::fprintf(stderr, "gemm_bench: this CPU runs none of tandem's kernels\n");
        return 1;
    }
    if (!gemm_kernel_runs(kernel)) {
        std::fprintf(stderr, "gemm_bench: this CPU cannot run tandem's %s kernel\n",
                     gemm_kernel_name(kernel));
        return 1;
    }
    std::printf("# OpenBLAS core %s, tandem's %s kernel, OMP_NUM_THREADS=%s\n", blas().core.c_str(),
                gemm_kernel_name(kernel),
                std::getenv("OMP_NUM_THREADS") ? std::getenv("OMP_NUM_THREADS") : "(unset)");
    std::printf("%-34s %10s %10s %7s %9s\n", "product [M x K] x [K x N]", "OpenBLAS", "tandem",
                "ratio", "max diff");
    double total_flops = 0, total_blas = 0, total_own = 0;
    std::vector<char> flush(cold ? size_t(256) << 20 : 0);
    const auto evict_caches = [&] {
        for (size_t i = 0; i < flush.size(); i += 64) flush[i] = static_cast<char>(i);
    };
    for (const Shape& s : shapes) {
        std::vector<float> a(s.M * s.K), b(s.K * s.N), c0(s.M * s.N), c1(s.M * s.N);
        tandem::fill_normal(a.data(), a.size(), {.seed = 1});
        tandem::fill_normal(b.data(), b.size(), {.seed = 2});
        tandem::fill_normal(c0.data(), c0.size(), {.seed = 3});
        c1 = c0;
        const int64_t lda = s.ta ? s.M : s.K, ldb = s.tb ? s.K : s.N;
        const float beta = s.acc ? 1.0f : 0.0f;
        // One untimed call each first: the check below compares these two results.
        sgemm(s.ta, s.tb, s.M, s.N, s.K, 1.0f, a.data(), lda, b.data(), ldb, beta, c0.data(), s.N);
        own_gemm(kernel, s.ta, s.tb, s.M, s.N, s.K, a.data(), lda, b.data(), ldb, beta, c1.data(),
                 s.N);
        double scale = 0, diff = 0;
        for (size_t i = 0; i < c0.size(); ++i) {
            scale = std::max(scale, double(std::fabs(c0[i])));
            diff = std::max(diff, double(std::fabs(c0[i] - c1[i])));
        }
        std::vector<double> t_blas, t_own;
        for (int r = 0; r < reps; ++r) {
            evict_caches();
            auto t0 = std::chrono::steady_clock::now();
            sgemm(s.ta, s.tb, s.M, s.N, s.K, 1.0f, a.data(), lda, b.data(), ldb, beta, c0.data(),
                  s.N);
            t_blas.push_back(seconds_since(t0));
            evict_caches();
            t0 = std::chrono::steady_clock::now();
            own_gemm(kernel, s.ta, s.tb, s.M, s.N, s.K, a.data(), lda, b.data(), ldb, beta,
                     c1.data(), s.N);
            t_own.push_back(seconds_since(t0));
        }
        const double flops = 2.0 * s.M * s.N * s.K;
        const double g_blas = flops / median(t_blas) / 1e9, g_own = flops / median(t_own) / 1e9;
        total_flops += flops, total_blas += median(t_blas), total_own += median(t_own);
        char name[64];
        std::snprintf(name, sizeof name, "[%lld x %lld] x [%lld x %lld]%s%s%s", (long long)s.M,
                      (long long)s.K, (long long)s.K, (long long)s.N, s.ta ? " A^T" : "",
                      s.tb ? " B^T" : "", s.acc ? " +=" : "");
        std::printf(
            "%-34s %10.1f %10.1f %6.3fx %9.2e   (GFLOP/s median of %d; min..max %.0f..%.0f "
            "vs %.0f..%.0f)\n",
            name, g_blas, g_own, g_own / g_blas, diff / scale, reps,
            flops / *std::max_element(t_blas.begin(), t_blas.end()) / 1e9,
            flops / *std::min_element(t_blas.begin(), t_blas.end()) / 1e9,
            flops / *std::max_element(t_own.begin(), t_own.end()) / 1e9,
            flops / *std::min_element(t_own.begin(), t_own.end()) / 1e9);
    }
    std::printf("ALL %.1f GFLOP: OpenBLAS %.1f GFLOP/s, tandem %.1f GFLOP/s, ratio %.3fx\n",
                total_flops / 1e9, total_flops / total_blas / 1e9, total_flops / total_own / 1e9,
                total_blas / total_own);
}

// matmul_weights (backend.h) on the cpu backend at the Qwen3-0.6B shapes, every weight dtype, for
// decoding (N = 1) and prefill (N = 128), each against its floor measured in the same run:
//   N = 1:   weight bytes / triad bandwidth (a[i] = b[i] + s c[i] over three 256 MB arrays, both
//            threads, bytes counted as 3 x 4 per element as STREAM does);
//   N = 128: 2 N O K / the f32 GEMM rate of the cpu backend's matmul at [128 x 1024] x [1024 x
//            4096] (its best product on this CPU).
// Decoding streams a whole model's weights per token, so a weight is never in cache: each timed
// call uses the next of enough copies of the weight to pass 1 GB. Prints per case the median of
// --passes passes (each the mean over its calls), the min-max spread, and the floor's share.
// On a shared machine (other processes on the same cores) wall time counts the time the
// threads wait for a core; the `cpu` columns divide the process's CPU time by the thread count
// instead (floors from the triad's CPU time too): what the same run takes on idle cores, as long
// as the memory bus is not the contended part. Run with OMP_WAIT_POLICY=passive so that waiting
// threads do not count.
//
//   matmul_weights_bench [--passes 7] [--isa generic|avx2|avx512|avx512_bf16] [--quick]
//                        [--shape qkv|o|gate_up|down|lm_head] [--dtype q8_0|...] [--rows N]
//                        [--hot] [--sgemm]
// --quick leaves out lm_head; --shape and --dtype run only those, --rows N runs N activation
// rows instead of 1 and 128 (the floor is the larger of the two kinds); --hot uses one copy of
// each weight (in cache when it fits: the kernels' compute rate, not the memory's); --sgemm runs
// f32 through OpenBLAS's sgemm instead (f32 decoding's route before matmul.cpp sent it here).
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <ctime>
#include <utility>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "backend/cpu/blas.h"
#include "backend/host_memory.h"
#include "backend/cpu/kernels.h"
#include "backend/cpu/matmul_weights.h"
#include "core/quant.h"
#include "core/rng.h"

namespace {

using namespace tandem;
using namespace tandem::backend::cpu;
using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
    return std::chrono::duration<double>(Clock::now() - t0).count();
}

// CPU seconds of the whole process (every thread) per thread of the OpenMP team.
double cpu_seconds() {
    timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return (t.tv_sec + 1e-9 * t.tv_nsec) / omp_get_max_threads();
}

// One timing in both clocks.
struct Timer {
    Clock::time_point wall = Clock::now();
    double cpu = cpu_seconds();
    double wall_s() const { return seconds_since(wall); }
    double cpu_s() const { return cpu_seconds() - cpu; }
};

struct Stats {
    double median, min, max;
};
Stats stats_of(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return {v[v.size() / 2], v.front(), v.back()};
}

struct AlignedBytes {
    char* p = nullptr;
    explicit AlignedBytes(size_t n) : p(static_cast<char*>(backend::host_alloc(n))) {
        backend::prefer_huge_pages(p, n);  // as the weights are (model/weights.cpp)
    }
    ~AlignedBytes() { backend::host_free(p); }
    AlignedBytes(const AlignedBytes&) = delete;
};

// Triad bandwidth in bytes per second: the median of `passes`, by wall and by CPU time.
std::pair<Stats, Stats> triad(int passes) {
    const int64_t n = int64_t(64) << 20;  // 64 Mi floats: 256 MB per array
    AlignedBytes a(n * 4), b(n * 4), c(n * 4);
    float *x = reinterpret_cast<float*>(a.p), *y = reinterpret_cast<float*>(b.p),
          *z = reinterpret_cast<float*>(c.p);
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; ++i) x[i] = 0, y[i] = 1, z[i] = 2;
    std::vector<double> rates, cpu_rates;
    for (int p = 0; p <= passes; ++p) {
        const Timer t;
#pragma omp parallel for schedule(static)
        for (int64_t i = 0; i < n; ++i) x[i] = y[i] + 3.0f * z[i];
        if (p == 0) continue;  // the first pass warms up
        rates.push_back(3.0 * 4 * n / t.wall_s());
        cpu_rates.push_back(3.0 * 4 * n / t.cpu_s());
    }
    return {stats_of(rates), stats_of(cpu_rates)};
}

// The f32 GEMM rate of the cpu backend's matmul, FLOP/s, by wall and by CPU time.
std::pair<Stats, Stats> gemm_rate(int passes) {
    const int64_t M = 128, K = 1024, N = 4096;
    std::vector<float> a(M * K), b(N * K), c(M * N);
    fill_normal(a.data(), a.size(), {.seed = 1});
    fill_normal(b.data(), b.size(), {.seed = 2});
    Tensor ta(a.data(), DType::F32, {M, K}), tb(b.data(), DType::F32, {N, K}),
        tc(c.data(), DType::F32, {M, N});
    matmul(tc, ta, tb, Tensor(), false, true, false);
    std::vector<double> rates, cpu_rates;
    for (int p = 0; p < passes; ++p) {
        const int calls = 20;
        const Timer t;
        for (int i = 0; i < calls; ++i) matmul(tc, ta, tb, Tensor(), false, true, false);
        rates.push_back(2.0 * M * N * K * calls / t.wall_s());
        cpu_rates.push_back(2.0 * M * N * K * calls / t.cpu_s());
    }
    return {stats_of(rates), stats_of(cpu_rates)};
}

struct Case {
    const char* name;
    int64_t O, K;
};

}  // namespace

int main(int argc, char** argv) {
    int passes = 7;
    bool quick = false, hot = false, sgemm_too = false;
    std::string only_shape, only_dtype;
    int64_t only_rows = 0;
    WeightsIsa isa = weights_isa_chosen();
    for (int i = 1; i < argc; ++i) {
        const std::string arg = argv[i];
        if (arg == "--passes" && i + 1 < argc) {
            passes = std::max(1, std::atoi(argv[++i]));
        } else if (arg == "--isa" && i + 1 < argc) {
            isa = weights_isa_choice(argv[++i], weights_isa_supported());
        } else if (arg == "--quick") {
            quick = true;
        } else if (arg == "--hot") {
            hot = true;
        } else if (arg == "--sgemm") {
            sgemm_too = true;
        } else if (arg == "--shape" && i + 1 < argc) {
            only_shape = argv[++i];
        } else if (arg == "--dtype" && i + 1 < argc) {
            only_dtype = argv[++i];
        } else if (arg == "--rows" && i + 1 < argc) {
            only_rows = std::atoll(argv[++i]);
        } else {
            std::fprintf(stderr,
                         "usage: matmul_weights_bench [--passes N] [--isa "
                         "generic|avx2|avx512|avx512_bf16] [--quick] [--shape S] [--dtype D] "
                         "[--rows N] [--hot] [--sgemm]\n");
            return 2;
        }
    }
    const Case cases[] = {{"qkv", 4096, 1024},     {"o", 1024, 2048},
                          {"gate_up", 6144, 1024}, {"down", 1024, 3072},
                          {"lm_head", 151936, 1024}};
    const DType dtypes[] = {DType::F32, DType::BF16, DType::F16, DType::Q8_0, DType::Q4_0};

    const auto [bw, bw_cpu] = triad(passes);
    const auto [flops, flops_cpu] = gemm_rate(passes);
    std::printf("# path %s, %d threads; triad %.1f GB/s (%.1f-%.1f), by CPU time %.1f; f32 GEMM "
                "%.1f GFLOP/s (%.1f-%.1f), by CPU time %.1f\n",
                weights_isa_name(isa), omp_get_max_threads(), bw.median / 1e9, bw.min / 1e9,
                bw.max / 1e9, bw_cpu.median / 1e9, flops.median / 1e9, flops.min / 1e9,
                flops.max / 1e9, flops_cpu.median / 1e9);
    std::printf("%-8s %-5s %4s %10s %19s %9s %7s | %8s %9s %7s\n", "shape", "dtype", "N",
                "median ms", "min-max ms", "floor ms", "floor%", "cpu ms", "floor ms", "floor%");
    for (const Case& c : cases) {
        if (quick && std::strcmp(c.name, "lm_head") == 0) continue;
        if (!only_shape.empty() && only_shape != c.name) continue;
        for (DType dtype : dtypes) {
            if (!only_dtype.empty() && only_dtype != dtype_name(dtype)) continue;
            const size_t bytes = dtype_bytes(dtype, c.O * c.K);
            // Copies of the weight to pass 1 GB (at least 2), filled from one random f32 row.
            const int64_t copies =
                hot ? 1 : std::max<int64_t>(2, ((size_t(1) << 30) + bytes - 1) / bytes);
            AlignedBytes weights(bytes * copies);
            {
                std::vector<float> row(c.K);
                fill_normal(row.data(), row.size(), {.seed = 3});
                const size_t row_bytes = dtype_bytes(dtype, c.K);
                std::vector<char> packed(row_bytes);
                convert_values(packed.data(), dtype, row.data(), DType::F32, c.K);
#pragma omp parallel for schedule(static)
                for (int64_t r = 0; r < c.O * copies; ++r)
                    std::memcpy(weights.p + r * row_bytes, packed.data(), row_bytes);
            }
            for (int64_t N : only_rows ? std::vector<int64_t>{only_rows} : std::vector<int64_t>{1, 128}) {
                std::vector<float> x(N * c.K), out(N * c.O);
                fill_normal(x.data(), x.size(), {.seed = 4});
                const Tensor tx(x.data(), DType::F32, {N, c.K}),
                    to(out.data(), DType::F32, {N, c.O});
                // --sgemm: f32 through OpenBLAS, the route of f32 decoding before it took these
                // tiles (matmul.cpp), for an A/B in one binary.
                const bool via_sgemm = sgemm_too && dtype == DType::F32;
                const auto call = [&](int64_t copy) {
                    if (via_sgemm) {
                        sgemm(false, true, N, c.O, c.K, 1.0f, x.data(), c.K,
                              reinterpret_cast<const float*>(weights.p + copy * bytes), c.K, 0.0f,
                              out.data(), c.O);
                        return;
                    }
                    const Tensor tw(weights.p + copy * bytes, dtype, {c.O, c.K});
                    matmul_weights(isa, to, tx, tw, Tensor(), false);
                };
                call(0);  // warm up: the buffers of the activations, the threads
                // The floor: reading the weights or the f32 GEMM's arithmetic, the larger (the
                // first at N = 1, the second at N = 128). Calls per pass: about 0.2 s of it.
                const double flop = 2.0 * N * c.O * c.K;
                const double floor_s = std::max(bytes / bw.median, flop / flops.median);
                const double floor_cpu = std::max(bytes / bw_cpu.median, flop / flops_cpu.median);
                const int64_t calls = std::clamp<int64_t>(int64_t(0.2 / floor_s), 2, 2000);
                std::vector<double> times, cpu_times;
                int64_t next = 1;
                for (int p = 0; p < passes; ++p) {
                    const Timer timer;
                    for (int64_t i = 0; i < calls; ++i) call(next++ % copies);
                    times.push_back(timer.wall_s() / calls);
                    cpu_times.push_back(timer.cpu_s() / calls);
                }
                const Stats t = stats_of(times), tc = stats_of(cpu_times);
                std::printf("%-8s %-5s %4lld %10.3f %9.3f-%-9.3f %9.3f %6.0f%% | %8.3f %9.3f %6.0f%%\n",
                            c.name, via_sgemm ? "sgemm" : std::string(dtype_name(dtype)).c_str(),
                            static_cast<long long>(N), t.median * 1e3, t.min * 1e3, t.max * 1e3,
                            floor_s * 1e3, 100 * floor_s / t.median, tc.median * 1e3,
                            floor_cpu * 1e3, 100 * floor_cpu / tc.median);
                std::fflush(stdout);
            }
        }
    }
    return 0;
}

// paged_attention_forward (backend.h) on the cpu backend at Qwen3-0.6B's heads (H 16, Hkv 8,
// D 128, pages of 16 positions handed out in a scrambled order): prefill chunks of one sequence
// (128 and 512 rows from position 0, 512 rows after 3584 cached) and a decode step of 16
// sequences at position 511, with an f32 and an f16 cache. Prints per case the median over
// --passes passes of the mean time per call, by wall clock and by CPU time (the process's CPU
// time divided by the threads: what idle cores would take, on a machine shared with others),
// and the rate by CPU time in GFLOP/s (4 D flops per query head and visible key: q.k and p v).
// Run with OMP_WAIT_POLICY=passive so that waiting threads do not count.
//   paged_attention_bench [--passes 5] [--calls 3]
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "backend/registry.h"
#include "core/dtype.h"
#include "core/rng.h"

namespace {

using tandem::DType;
using tandem::Tensor;

constexpr int64_t H = 16, Hkv = 8, D = 128, kPage = 16, W = (H + 2 * Hkv) * D;

double cpu_seconds() {
    timespec t{};
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return static_cast<double>(t.tv_sec) + 1e-9 * static_cast<double>(t.tv_nsec);
}
double wall_seconds() {
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

// One step: rows of sequences at positions, each sequence `length` positions long in the cache.
struct Case {
    const char* name;
    int64_t n_seqs, length;
    std::vector<int32_t> seq_index, positions;
};

Case chunk(const char* name, int64_t start, int64_t rows) {
    Case c{name, 1, start + rows, {}, {}};
    for (int64_t r = 0; r < rows; ++r) {
        c.seq_index.push_back(0);
        c.positions.push_back(static_cast<int32_t>(start + r));
    }
    return c;
}
Case decode(const char* name, int64_t seqs, int64_t pos) {
    Case c{name, seqs, pos + 1, {}, {}};
    for (int64_t s = 0; s < seqs; ++s) {
        c.seq_index.push_back(static_cast<int32_t>(s));
        c.positions.push_back(static_cast<int32_t>(pos));
    }
    return c;
}

void run(const Case& c, DType cache, int passes, int calls) {
    auto& be = tandem::backend::get_backend("cpu");
    const int64_t N = static_cast<int64_t>(c.positions.size());
    const int64_t pages_per_seq = (c.length + kPage - 1) / kPage,
                  n_pages = c.n_seqs * pages_per_seq;
    std::vector<int32_t> table(n_pages);
    std::iota(table.begin(), table.end(), 0);
    std::shuffle(table.begin(), table.end(), std::mt19937(3));
    const int64_t cache_elems = n_pages * kPage * Hkv * D;
    std::vector<float> qkv(N * W), out(N * H * D), kf(cache_elems), vf(cache_elems);
    tandem::fill_normal(qkv.data(), N * W, {.seed = 1});
    tandem::fill_normal(kf.data(), cache_elems, {.seed = 2});
    tandem::fill_normal(vf.data(), cache_elems, {.seed = 3});
    std::vector<uint16_t> kh, vh;
    void *k = kf.data(), *v = vf.data();
    if (cache == DType::F16) {
        for (float x : kf) kh.push_back(tandem::f16_from_f32(x));
        for (float x : vf) vh.push_back(tandem::f16_from_f32(x));
        k = kh.data();
        v = vh.data();
    }
    std::vector<int32_t> seq = c.seq_index, pos = c.positions;
    const tandem::Shape pages{n_pages, kPage, Hkv * D};
    const Tensor tq(qkv.data(), DType::F32, {N, W}), to(out.data(), DType::F32, {N, H * D}),
        tk(k, cache, pages), tv(v, cache, pages),
        tt(table.data(), DType::I32, {c.n_seqs, pages_per_seq}), ts(seq.data(), DType::I32, {N}),
        tp(pos.data(), DType::I32, {N});
    const auto call = [&] { be.paged_attention_forward(to, tq, tk, tv, tt, ts, tp, H, Hkv); };
    call();  // warm up
    std::vector<double> wall, cpu;
    const int threads = omp_get_max_threads();
    for (int p = 0; p < passes; ++p) {
        const double w0 = wall_seconds(), c0 = cpu_seconds();
        for (int i = 0; i < calls; ++i) call();
        wall.push_back((wall_seconds() - w0) / calls);
        cpu.push_back((cpu_seconds() - c0) / calls / threads);
    }
    std::sort(wall.begin(), wall.end());
    std::sort(cpu.begin(), cpu.end());
    double flops = 0;
    for (int32_t p : c.positions) flops += 4.0 * D * H * (p + 1);
    const double cpu_med = cpu[cpu.size() / 2];
    std::printf("%-22s %-4s %9.3f %9.3f-%-9.3f %9.3f %9.3f-%-9.3f %8.1f\n", c.name,
                tandem::dtype_name(cache).data(), 1e3 * wall[wall.size() / 2], 1e3 * wall.front(),
                1e3 * wall.back(), 1e3 * cpu_med, 1e3 * cpu.front(), 1e3 * cpu.back(),
                flops / cpu_med * 1e-9);
}

}  // namespace

int main(int argc, char** argv) {
    int passes = 5, calls = 3;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!std::strcmp(argv[i], "--passes"))
            passes = std::atoi(argv[i + 1]);
        else if (!std::strcmp(argv[i], "--calls"))
            calls = std::atoi(argv[i + 1]);
        else {
            std::fprintf(stderr, "paged_attention_bench: unknown option %s (see the header)\n",
                         argv[i]);
            return 2;
        }
    }
    std::printf("# %d threads; ms per call (median, min-max of %d passes of %d calls)\n",
                omp_get_max_threads(), passes, calls);
    std::printf("%-22s %-4s %9s %-19s %9s %-19s %8s\n", "case", "kv", "wall ms", " spread",
                "cpu ms", " spread", "GFLOP/s");
    const std::vector<Case> cases = {
        chunk("prefill 128 at 0", 0, 128), chunk("prefill 512 at 0", 0, 512),
        chunk("prefill 512 at 3584", 3584, 512), decode("decode 16 seqs at 511", 16, 511)};
    for (const Case& c : cases)
        for (DType cache : {DType::F32, DType::F16}) run(c, cache, passes, calls);
}

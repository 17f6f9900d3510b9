// Times a full fp32 training step (forward with loss, backward, clip + AdamW) and prints tokens/s:
// the median of --steps steps after --warmup, with min and max. Also measures the backend's
// sgemm rate on the model's own MLP shape and prints the FLOP floor of a step at that rate.
//
//   train_step_bench [--backend cpu] [--model llama-15m|gpt2-124m|all] [--batch B] [--seq T]
//                    [--steps 10] [--warmup 2] [--no-sgemm] [--profile]
//                    [--lockstep IN_FIFO OUT_FIFO]
//
// --lockstep waits for a byte on IN_FIFO before each step and writes one to OUT_FIFO after it:
// bench/run_train_step.sh chains tandem and PyTorch through two fifos so that their steps
// alternate one by one, and a neighbour's load on the shared machine falls on both sides alike.
// --profile times every kernel call (synchronised) and prints where the step's time goes.
// Each result line starts with "RESULT" so that bench/run_train_step.sh can collect it; it ends
// with the process's peak resident memory (getrusage), measured before the sgemm probe.
// The model and optimizer are the ones `tandem train` runs: the bench and the product share
// the code path, OpenBLAS loading (backend/cpu/blas.cpp) included.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#include "backend/buffer.h"
#include "backend/cpu/blas.h"
#include "backend/registry.h"
#include "model/model.h"
#include "profiling_backend.h"
#include "train/adamw.h"

using namespace tandem;

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
    return std::chrono::duration<double>(Clock::now() - start).count();
}

struct Stats {
    double median, min, max;
};

Stats summarize(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    const size_t n = v.size();
    const double median = n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
    return {median, v.front(), v.back()};
}

// FLOPs of one training step: 6 per parameter of every product per token (forward 2, backward
// 4; the LM head counts even when tied, embedding lookups do not), plus attention's q.k and
// p.v products: 2 x 2 T D per head per token forward, times 3 with backward. Counted without
// the causal half, the usual convention; a causal kernel can do about half of that term.
double step_flops(const model::ModelConfig& c, const model::ParamLayout& layout, int64_t B,
                  int64_t T) {
    double n_matmul = 0;
    for (const auto& e : layout.entries())
        if (e.role == model::ParamRole::Matrix) n_matmul += double(e.numel());
    n_matmul += double(c.vocab_size) * c.d_model * (c.tie_embeddings ? 1 : 0);
    const double attention = 12.0 * c.n_layers * T * c.n_heads * c.head_dim;
    return double(B) * T * (6.0 * n_matmul + attention);
}

// sgemm rate of the backend on [M, K] x [K, N] (GFLOP/s): the best of 20 runs after 2, since
// the floor wants the rate the machine can reach, not one slowed by a neighbour's build.
double sgemm_gflops(backend::Backend& be, int64_t M, int64_t K, int64_t N) {
    backend::Buffer a(be, M * K * 4), b(be, K * N * 4), c(be, M * N * 4);
    const Tensor ta = a.tensor(DType::F32, {M, K}), tb = b.tensor(DType::F32, {K, N}),
                 tc = c.tensor(DType::F32, {M, N});
    std::vector<float> host(std::max(M * K, K * N), 0.01f);
    be.copy_to_device(ta.data, host.data(), ta.bytes());
    be.copy_to_device(tb.data, host.data(), tb.bytes());
    double best = 0;
    for (int i = 0; i < 22; ++i) {
        const auto start = Clock::now();
        be.matmul(tc, ta, tb, {}, false, false, false);
        be.synchronize();
        if (i >= 2) best = std::max(best, 2.0 * M * K * N / seconds_since(start) / 1e9);
    }
    return best;
}

// The turn-taking of --lockstep; both ends opened read-write, so that opening never blocks.
struct Lockstep {
    int in = -1, out = -1;
    bool active() const { return in >= 0; }
    void wait_turn() const {
        char c;
        if (active() && ::read(in, &c, 1) != 1) std::perror("train_step_bench: lockstep read");
    }
    void pass_turn() const {
        const char c = 's';
        if (active() && ::write(out, &c, 1) != 1) std::perror("train_step_bench: lockstep write");
    }
};

// How much of the machine others used during a step: the CPUs' busy time (/proc/stat) minus
// this process's own CPU time, over the CPUs' total time. Steps where a neighbour ran are
// reported so that bench/run_train_step.sh can leave them out of the comparison.
struct CpuShare {
    double busy = 0, total = 0, own = 0;  // seconds
    static CpuShare now() {
        CpuShare c;
        if (std::FILE* f = std::fopen("/proc/stat", "r")) {
            unsigned long long v[8] = {};
            if (std::fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2],
                            &v[3], &v[4], &v[5], &v[6], &v[7]) == 8) {
                const double tick = 1.0 / static_cast<double>(sysconf(_SC_CLK_TCK));
                for (unsigned long long x : v) c.total += x * tick;
                c.busy = c.total - (v[3] + v[4]) * tick;  // minus idle and iowait
            }
            std::fclose(f);
        }
        rusage u{};
        getrusage(RUSAGE_SELF, &u);
        c.own = u.ru_utime.tv_sec + u.ru_stime.tv_sec + 1e-6 * (u.ru_utime.tv_usec + u.ru_stime.tv_usec);
        return c;
    }
    // Percent of the CPUs' time that other processes used since `start`.
    static double others_percent(const CpuShare& start, const CpuShare& end) {
        const double total = end.total - start.total;
        if (total <= 0) return 0;
        const double others = (end.busy - start.busy) - (end.own - start.own);
        return std::max(0.0, 100.0 * others / total);
    }
};

double peak_rss_mib() {
    rusage usage{};
    getrusage(RUSAGE_SELF, &usage);
    return usage.ru_maxrss / 1024.0;  // Linux reports KiB
}

void run(const std::string& backend_name, const std::string& preset, int64_t B, int64_t T,
         int steps, int warmup, bool measure_sgemm, bool profile, const Lockstep& lockstep) {
    backend::Backend& device = backend::get_backend(backend_name);
    bench::ProfilingBackend profiler(device);
    backend::Backend& be = profile ? static_cast<backend::Backend&>(profiler) : device;
    const model::ModelConfig config = model::preset_config(preset);
    model::Model m(config, be, DType::F32, B, T);
    m.init(1);
    train::AdamW opt(be, m.layout(), DType::F32,
                     {.beta1 = 0.9f, .beta2 = 0.95f, .eps = 1e-8f, .weight_decay = 0.1f,
                      .grad_clip = 1.0f});
    std::vector<int32_t> tokens(B * T), targets(B * T);
    for (int64_t i = 0; i < B * T; ++i) {
        tokens[i] = static_cast<int32_t>((i * 7919 + 13) % config.vocab_size);
        targets[i] = static_cast<int32_t>((i * 104729 + 5) % config.vocab_size);
    }
    std::printf("# %s on %s: %lld params, B=%lld T=%lld, activations %.1f MiB\n", preset.c_str(),
                backend_name.c_str(), static_cast<long long>(m.layout().n_params()),
                static_cast<long long>(B), static_cast<long long>(T),
                m.activation_bytes() / 1048576.0);
    std::vector<double> times, t_forward, t_backward, t_optimizer;
    double loss = 0;
    for (int i = 0; i < warmup + steps; ++i) {
        lockstep.wait_turn();
        const CpuShare cpu_start = CpuShare::now();
        const auto start = Clock::now();
        m.zero_grad();
        loss = m.forward(tokens, targets, B, T);
        be.synchronize();
        const double forward_s = seconds_since(start);
        m.backward();
        be.synchronize();
        const double backward_s = seconds_since(start) - forward_s;
        opt.step(m.params(), m.grads(), 1e-4f);
        be.synchronize();
        const double s = seconds_since(start);
        if (i + 1 == warmup) profiler.reset();
        if (i >= warmup) {
            times.push_back(s);
            t_forward.push_back(forward_s);
            t_backward.push_back(backward_s);
            t_optimizer.push_back(s - forward_s - backward_s);
        }
        std::fprintf(stderr, "  step %d: %.3f s, loss %.4f, others %.0f%%\n", i, s, loss,
                     CpuShare::others_percent(cpu_start, CpuShare::now()));
        lockstep.pass_turn();
    }
    std::printf("# median seconds: zero_grad+forward %.3f, backward %.3f, clip+adamw %.3f\n",
                summarize(t_forward).median, summarize(t_backward).median,
                summarize(t_optimizer).median);
    if (profile) profiler.print(steps);
    const Stats t = summarize(times);
    const double tokens_per_step = double(B * T);
    const double flops = step_flops(config, m.layout(), B, T);
    std::printf("RESULT tandem-%s %s B=%lld T=%lld tok/s median %.1f min %.1f max %.1f "
                "(step %.3f s, %d steps) GFLOP/step %.1f achieved %.1f GFLOP/s maxrss_mib %.0f\n",
                backend_name.c_str(), preset.c_str(), static_cast<long long>(B),
                static_cast<long long>(T), tokens_per_step / t.median, tokens_per_step / t.max,
                tokens_per_step / t.min, t.median, steps, flops / 1e9, flops / t.median / 1e9,
                peak_rss_mib());
    if (measure_sgemm) {
        lockstep.wait_turn();  // the peer's last step is over: the probe runs alone
        // The model's MLP product, and a square one as the machine's reference rate.
        const double model_rate = sgemm_gflops(be, B * T, config.d_model, config.d_ffn);
        const double square_rate = sgemm_gflops(be, 1024, 1024, 1024);
        const double rate = std::max(model_rate, square_rate);
        // Against this rate, the step's FLOP rate is the "fraction of the machine" of the issue.
        const double floor_s = flops / (rate * 1e9);
        std::printf("FLOOR %s sgemm [%lld x %lld] x [%lld x %lld] %.1f GFLOP/s, 1024^3 %.1f "
                    "GFLOP/s -> step >= %.3f s, <= %.1f tok/s\n",
                    preset.c_str(), static_cast<long long>(B * T),
                    static_cast<long long>(config.d_model), static_cast<long long>(config.d_model),
                    static_cast<long long>(config.d_ffn), model_rate, square_rate, floor_s,
                    tokens_per_step / floor_s);
    }
    std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
    std::string backend_name = "cpu", model_name = "all";
    int64_t batch = 0, seq = 0;
    int steps = 10, warmup = 2;
    bool measure_sgemm = true, profile = false;
    Lockstep lockstep;
    for (int i = 1; i < argc; ++i) {
        const std::string arg = argv[i];
        auto value = [&]() -> std::string {
            if (i + 1 >= argc) {
                std::fprintf(stderr, "train_step_bench: %s needs a value\n", arg.c_str());
                std::exit(2);
            }
            return argv[++i];
        };
        if (arg == "--backend") backend_name = value();
        else if (arg == "--model") model_name = value();
        else if (arg == "--batch") batch = std::stoll(value());
        else if (arg == "--seq") seq = std::stoll(value());
        else if (arg == "--steps") steps = std::stoi(value());
        else if (arg == "--warmup") warmup = std::stoi(value());
        else if (arg == "--no-sgemm") measure_sgemm = false;
        else if (arg == "--profile") profile = true;
        else if (arg == "--lockstep") {
            const std::string in = value(), out = value();
            lockstep.in = ::open(in.c_str(), O_RDWR);
            lockstep.out = ::open(out.c_str(), O_RDWR);
            if (lockstep.in < 0 || lockstep.out < 0) {
                std::fprintf(stderr, "train_step_bench: cannot open fifos %s, %s\n", in.c_str(),
                             out.c_str());
                return 2;
            }
        }
        else {
            std::fprintf(stderr, "train_step_bench: unknown flag %s\n", arg.c_str());
            return 2;
        }
    }
    try {
        if (backend_name == "cpu") {
            const backend::cpu::Blas& blas = backend::cpu::blas();
            std::printf("# BLAS: %s, core %s (%s); OMP_NUM_THREADS=%s\n", blas.config.c_str(),
                        blas.core.c_str(), blas.chosen_by.c_str(),
                        std::getenv("OMP_NUM_THREADS") ? std::getenv("OMP_NUM_THREADS") : "unset");
        }
        // The shapes: llama-15m at batch 8 x 256, gpt2-124m at batch 4 x 64.
        if (model_name == "all" || model_name == "llama-15m")
            run(backend_name, "llama-15m", batch ? batch : 8, seq ? seq : 256, steps, warmup,
                measure_sgemm, profile, lockstep);
        if (model_name == "all" || model_name == "gpt2-124m")
            run(backend_name, "gpt2-124m", batch ? batch : 4, seq ? seq : 64, steps, warmup,
                measure_sgemm, profile, lockstep);
        if (model_name != "all" && model_name != "llama-15m" && model_name != "gpt2-124m")
            run(backend_name, model_name, batch ? batch : 4, seq ? seq : 64, steps, warmup,
                measure_sgemm, profile, lockstep);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "train_step_bench: error: %s\n", e.what());
        return 1;
    }
    return 0;
}

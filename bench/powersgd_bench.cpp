// PowerSGD's own cost per step on this process's threads: GradientCompressor::all_reduce on one
// rank (the exchange is then the identity, so only the passes over the gradient are timed) at
// the llama-15m shape of scripts/slow_links.sh: the 32000 x 288 tied embedding and 6 layers'
// matrices, 15.2M values. Between calls 256 MB are written, so that the gradient comes from
// memory as it does after a backward pass. Prints the median, min and max over the calls.
//
//   OMP_NUM_THREADS=1 taskset -c 0 powersgd_bench [--compress powersgd:2] [--calls 30] [--defer]
//
// --defer leaves the estimate as factors (what training does) and forms it piece by piece, as
// AdamW reads it, into a buffer that stays in cache.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "dist/communicator.h"
#include "dist/compression.h"

namespace {

using namespace tandem;

// llama-15m's flat gradient: blocks where the matrices are, norms (288 values) between them.
std::vector<dist::GradientBlock> llama_15m_blocks(int64_t& n) {
    std::vector<dist::GradientBlock> blocks;
    int64_t at = 0;
    const auto matrix = [&](int64_t rows, int64_t cols) {
        blocks.push_back({at, rows, cols});
        at += rows * cols;
    };
    matrix(32000, 288);
    for (int layer = 0; layer < 6; ++layer) {
        at += 288;
        for (int i = 0; i < 4; ++i) matrix(288, 288);
        at += 288;
        matrix(768, 288);
        matrix(288, 768);
        matrix(768, 288);
    }
    n = at + 288;
    return blocks;
}

}  // namespace

int main(int argc, char** argv) {
    std::string compress = "powersgd:2";
    int calls = 30;
    bool defer = false;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        if (a == "--compress" && i + 1 < argc)
            compress = argv[++i];
        else if (a == "--calls" && i + 1 < argc)
            calls = std::max(3, std::atoi(argv[++i]));
        else if (a == "--defer")
            defer = true;
        else {
            std::fprintf(stderr,
                         "usage: powersgd_bench [--compress powersgd:2] [--calls 30] [--defer]\n");
            return 2;
        }
    }
    int64_t n = 0;
    const std::vector<dist::GradientBlock> blocks = llama_15m_blocks(n);
    dist::GradientCompressor codec(dist::parse_compression(compress), n, blocks, 1);
    dist::LocalCommunicator comm;
    std::vector<float> fresh(n), grad(n), piece(16384);
    for (int64_t i = 0; i < n; ++i) fresh[i] = float((i * 2654435761u) % 1000) * 1e-6f - 5e-4f;
    std::vector<char> evict(256 << 20);
    std::vector<double> ms;
    double checksum = 0;
    for (int c = 0; c < calls; ++c) {
        std::copy(fresh.begin(), fresh.end(), grad.begin());
        std::memset(evict.data(), c, evict.size());
        const auto t0 = std::chrono::steady_clock::now();
        codec.all_reduce(comm, Tensor(grad.data(), DType::F32, {n}), defer);
        if (defer)
            for (int64_t at = 0; at < n; at += int64_t(piece.size())) {
                const int64_t count = std::min<int64_t>(int64_t(piece.size()), n - at);
                codec.fill_output(grad.data(), at, count, piece.data());
                checksum += piece[0];
            }
        ms.push_back(
            std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0)
                .count());
    }
    ms.erase(ms.begin());  // the first call allocates and draws Q
    std::sort(ms.begin(), ms.end());
    std::printf(
        "%s%s, %lld values: %.2f ms per call (min %.2f, max %.2f, %zu calls; checksum %g)\n",
        compress.c_str(), defer ? " --defer" : "", static_cast<long long>(n), ms[ms.size() / 2],
        ms.front(), ms.back(), ms.size(), checksum);
    return 0;
}

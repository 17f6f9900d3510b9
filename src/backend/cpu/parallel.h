// How the cpu kernels split work across OpenMP threads. Reductions split their rows into parts
// whose number depends on the problem size only, never on the thread count, and combine the
// parts in a fixed order: a result is the same however many threads ran it.
#pragma once

#include <algorithm>
#include <cstdint>

namespace tandem::backend::cpu {

// Elementwise kernels hand each thread runs of this many elements (64 KiB of f32).
constexpr int64_t kElementsPerTask = 1 << 14;

inline int64_t ceil_div(int64_t a, int64_t b) {
    return (a + b - 1) / b;
}

// Up to this many elements of work a kernel runs on the calling thread alone (an OpenMP `if`
// clause): waking the team and joining it costs a few microseconds on idle cores and up to a
// scheduler time slice on shared ones, more than the work. Batch-1 decoding's per-row kernels
// (norms, adds, SwiGLU, RoPE, the cache write, the matmul's activation row) are all below it:
// on Qwen3-0.6B, team starts and barriers per token went from 651 to 172 (docs/PERFORMANCE.md,
// "Inference engine decode profile"). Batch 16's (16 K elements and up) keep both threads.
constexpr int64_t kSerialElements = 1 << 12;
inline bool worth_threads(int64_t elements) {
    return elements > kSerialElements;
}

struct Range {
    int64_t begin, end;
};
// Part i of `parts` near-equal parts of [0, n).
inline Range part_of(int64_t n, int64_t parts, int64_t i) {
    return {n * i / parts, n * (i + 1) / parts};
}

// Parts for a reduction over `rows` rows: at least 8 rows each, at most 64 parts (enough for
// every core, and the partial buffers stay small).
inline int64_t reduction_parts(int64_t rows) {
    return std::clamp<int64_t>(rows / 8, 1, 64);
}

}  // namespace tandem::backend::cpu

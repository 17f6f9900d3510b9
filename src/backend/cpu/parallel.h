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

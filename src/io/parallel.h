// A parallel loop on plain std::threads for the tokenizing stages (prepare, BPE counting). Not
// OpenMP: its idle workers spin between parallel regions, and on a shared machine that spinning
// took CPU time from the thread reading the next batch (measured: 30% more CPU for prepare).
#pragma once

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <exception>
#include <thread>
#include <vector>

namespace tandem::io {

// Threads to use for `requested` (0: one per core).
inline int thread_count(int requested) {
    if (requested > 0) return requested;
    return std::max(1, int(std::thread::hardware_concurrency()));
}

// Calls body(i, thread) for i in [0, n), items handed out one at a time to `n_threads` threads
// (thread in [0, n_threads)), and returns when all are done. The first exception is rethrown.
template <typename Body>
void parallel_for(size_t n, int n_threads, Body&& body) {
    n_threads = std::max(1, std::min<int>(n_threads, int(n)));
    if (n_threads == 1) {
        for (size_t i = 0; i < n; ++i) body(i, 0);
        return;
    }
    std::atomic<size_t> next{0};
    std::exception_ptr error;
    std::atomic<bool> failed{false};
    auto work = [&](int thread) {
        try {
            for (size_t i; !failed && (i = next.fetch_add(1)) < n;) body(i, thread);
        } catch (...) {
            if (!failed.exchange(true)) error = std::current_exception();
        }
    };
    std::vector<std::thread> threads;
    for (int t = 1; t < n_threads; ++t) threads.emplace_back(work, t);
    work(0);
    for (auto& t : threads) t.join();
    if (error) std::rethrow_exception(error);
}

}  // namespace tandem::io

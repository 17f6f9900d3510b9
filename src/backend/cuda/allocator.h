// A caching allocator for device memory: blocks are rounded up to a size bucket and, when freed,
// kept on that bucket's free list for the next request of the same bucket, so a training loop
// that allocates the same sizes every step calls cudaMalloc only in its first step.
#pragma once

#include <cstddef>
#include <map>
#include <mutex>
#include <unordered_map>
#include <vector>

namespace tandem::backend::cuda {

class CachingAllocator {
public:
    ~CachingAllocator();
    // Throws Error when the device is full, after returning the cached blocks to the driver.
    void* alloc(size_t bytes);
    void free(void* ptr);
    // cudaFree of every cached (free) block.
    void release_cached();

    size_t reserved_bytes() const;
    size_t in_use_bytes() const;
    size_t n_device_mallocs() const;

    // Sizes below 1 MiB go to the next power of two (at least 512 bytes), larger ones to the next
    // multiple of 1 MiB: at most 2x waste on small blocks, where it costs little.
    static size_t bucket_of(size_t bytes);

private:
    mutable std::mutex mutex_;
    std::map<size_t, std::vector<void*>> free_blocks_;  // bucket size -> cached blocks
    std::unordered_map<void*, size_t> in_use_;          // block -> bucket size
    size_t reserved_ = 0, in_use_bytes_ = 0, n_mallocs_ = 0;
};

}  // namespace tandem::backend::cuda

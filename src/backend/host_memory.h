// Host memory for the backends whose "device" is the host (reference/ and cpu/): aligned
// allocation and plain copies. Each such backend derives from HostMemoryBackend.
#pragma once

#include "backend/backend.h"

namespace tandem::backend {

// `bytes` of host memory on a 64-byte boundary, and from 2 MB on on a 2 MB boundary, so that
// prefer_huge_pages can give it huge pages. Freed by host_free.
void* host_alloc(size_t bytes);
void host_free(void* ptr);
// Asks Linux (whose default policy, "madvise", gives transparent huge pages only where asked)
// to back [ptr, ptr + bytes) of a host_alloc buffer, not yet touched, with 2 MB pages. For data
// streamed whole, as decoding streams the weights: a core walking them through 4 KB pages spends
// its time on page walks and its prefetchers stop at every page edge (a Q8_0 matrix-vector
// product on one Sapphire Rapids core went from 10 to 15.7 GB/s). Not for everything: data read
// at large power-of-two strides (the paged KV cache, 4 KB a position) crowds into a few cache
// sets on physically contiguous pages (a 512-token prefill fell from 441 to 370 tok/s), and a
// training step ran 5-7% slower with all its buffers on huge pages. Benches that measure the
// memory's bandwidth use it too, so that their floors and the weights live on the same pages.
void prefer_huge_pages(void* ptr, size_t bytes);

class HostMemoryBackend : public Backend {
public:
    Device device() const override { return Device::Host; }
    void* alloc(size_t bytes) override;
    void free(void* ptr) override;
    void copy_to_device(void* dst, const void* host_src, size_t bytes) override;
    void copy_to_host(void* host_dst, const void* src, size_t bytes) override;
    void copy(void* dst, const void* src, size_t bytes) override;
    void fill_zero(Tensor x) override;
};

}  // namespace tandem::backend

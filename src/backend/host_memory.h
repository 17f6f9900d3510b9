// Host memory for the backends whose "device" is the host (reference/ and cpu/): aligned
// allocation and plain copies. Each such backend derives from HostMemoryBackend.
#pragma once

#include "backend/backend.h"

namespace tandem::backend {

// `bytes` of host memory on a 64-byte boundary, and from 2 MB on, on a 2 MB boundary with
// transparent huge pages asked for (host_memory.cpp says why). Freed by host_free. Benches that
// measure the memory's bandwidth take their arrays from here too, so that the floors they
// report and the weights they compare against live on the same kind of pages.
void* host_alloc(size_t bytes);
void host_free(void* ptr);

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

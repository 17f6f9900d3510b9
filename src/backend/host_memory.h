// Host memory for the backends whose "device" is the host (reference/ and cpu/): aligned
// allocation and plain copies. Each such backend derives from HostMemoryBackend.
#pragma once

#include "backend/backend.h"

namespace tandem::backend {

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

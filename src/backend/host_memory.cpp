// Aligned host allocation and copies shared by the host backends.
#include "backend/host_memory.h"

#include <cstdlib>
#include <cstring>

namespace tandem::backend {

void* HostMemoryBackend::alloc(size_t bytes) {
    // Round up: aligned_alloc wants a multiple of the alignment. 64 bytes is one cache line and
    // one AVX-512 vector.
    const size_t rounded = (bytes + 63) / 64 * 64;
    void* ptr = std::aligned_alloc(64, rounded == 0 ? 64 : rounded);
    if (!ptr) throw Error("out of host memory allocating ", bytes, " bytes");
    return ptr;
}

void HostMemoryBackend::free(void* ptr) { std::free(ptr); }

void HostMemoryBackend::copy_to_device(void* dst, const void* src, size_t bytes) {
    if (bytes) std::memmove(dst, src, bytes);
}
void HostMemoryBackend::copy_to_host(void* dst, const void* src, size_t bytes) {
    if (bytes) std::memmove(dst, src, bytes);
}
void HostMemoryBackend::copy(void* dst, const void* src, size_t bytes) {
    if (bytes) std::memmove(dst, src, bytes);
}
void HostMemoryBackend::fill_zero(Tensor x) {
    if (x.data) std::memset(x.data, 0, x.bytes());
}

}  // namespace tandem::backend

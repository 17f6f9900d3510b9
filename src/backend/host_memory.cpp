// Aligned host allocation and copies shared by the host backends.
#include "backend/host_memory.h"

#include <sys/mman.h>

#include <cstdlib>
#include <cstring>

namespace tandem::backend {

namespace {

// Buffers from this size on start on a 2 MB boundary, so that huge pages can back them where a
// caller asks (prefer_huge_pages). The head before the boundary is address space only, never
// touched, so resident memory does not grow.
constexpr size_t kHugePage = size_t(2) << 20;

}  // namespace

void* host_alloc(size_t bytes) {
    // 64 bytes is one cache line and one AVX-512 vector.
    const size_t rounded = bytes == 0 ? 64 : (bytes + 63) / 64 * 64;
    void* ptr = nullptr;
    if (posix_memalign(&ptr, rounded >= kHugePage ? kHugePage : 64, rounded) != 0 || !ptr)
        throw Error("out of host memory allocating ", bytes, " bytes");
    return ptr;
}

void host_free(void* ptr) { std::free(ptr); }

void prefer_huge_pages(void* ptr, size_t bytes) {
    // Advice: where the kernel refuses it, small pages serve as before.
    if (ptr && bytes >= kHugePage) ::madvise(ptr, bytes, MADV_HUGEPAGE);
}

void* HostMemoryBackend::alloc(size_t bytes) { return host_alloc(bytes); }
void HostMemoryBackend::free(void* ptr) { host_free(ptr); }

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

// The caching allocator of allocator.h, and the error helper behind TANDEM_CUDA_CHECK.
#include "backend/cuda/allocator.h"

#include "backend/cuda/check.h"

namespace tandem::backend::cuda {

void throw_cuda_error(const char* call, const char* what, long code, const char* file, int line) {
    throw Error(call, " failed: ", what, " (code ", code, ") at ", file, ":", line);
}

CachingAllocator::~CachingAllocator() {
    // No throwing from a destructor, and at process exit the driver may already be gone.
    for (auto& [bucket, blocks] : free_blocks_)
        for (void* p : blocks) cudaFree(p);
    for (auto& [p, bucket] : in_use_) cudaFree(p);
}

size_t CachingAllocator::bucket_of(size_t bytes) {
    constexpr size_t kMiB = size_t(1) << 20;
    if (bytes >= kMiB) return (bytes + kMiB - 1) / kMiB * kMiB;
    size_t bucket = 512;
    while (bucket < bytes) bucket *= 2;
    return bucket;
}

void* CachingAllocator::alloc(size_t bytes) {
    const size_t bucket = bucket_of(bytes);
    std::lock_guard lock(mutex_);
    void* ptr = nullptr;
    auto it = free_blocks_.find(bucket);
    if (it != free_blocks_.end() && !it->second.empty()) {
        ptr = it->second.back();
        it->second.pop_back();
    } else {
        cudaError_t status = cudaMalloc(&ptr, bucket);
        if (status == cudaErrorMemoryAllocation) {
            cudaGetLastError();  // clear the sticky-free error before retrying
            for (auto& [b, blocks] : free_blocks_)
                for (void* p : blocks) {
                    TANDEM_CUDA_CHECK(cudaFree(p));
                    reserved_ -= b;
                }
            free_blocks_.clear();
            status = cudaMalloc(&ptr, bucket);
        }
        if (status != cudaSuccess) {
            cudaGetLastError();
            size_t free_bytes = 0, total_bytes = 0;
            cudaMemGetInfo(&free_bytes, &total_bytes);
            throw Error("cuda: cannot allocate ", bytes, " bytes (", cudaGetErrorString(status),
                        "; ", free_bytes, " of ", total_bytes, " bytes free on the device, ",
                        in_use_bytes_, " in use by tandem): use a smaller batch or sequence");
        }
        reserved_ += bucket;
        ++n_mallocs_;
    }
    in_use_.emplace(ptr, bucket);
    in_use_bytes_ += bucket;
    return ptr;
}

void CachingAllocator::free(void* ptr) {
    if (!ptr) return;
    std::lock_guard lock(mutex_);
    auto it = in_use_.find(ptr);
    TANDEM_ASSERT(it != in_use_.end(), "free of a pointer this allocator did not hand out", ptr);
    free_blocks_[it->second].push_back(ptr);
    in_use_bytes_ -= it->second;
    in_use_.erase(it);
}

void CachingAllocator::release_cached() {
    std::lock_guard lock(mutex_);
    for (auto& [bucket, blocks] : free_blocks_)
        for (void* p : blocks) {
            TANDEM_CUDA_CHECK(cudaFree(p));
            reserved_ -= bucket;
        }
    free_blocks_.clear();
}

size_t CachingAllocator::reserved_bytes() const {
    std::lock_guard lock(mutex_);
    return reserved_;
}
size_t CachingAllocator::in_use_bytes() const {
    std::lock_guard lock(mutex_);
    return in_use_bytes_;
}
size_t CachingAllocator::n_device_mallocs() const {
    std::lock_guard lock(mutex_);
    return n_mallocs_;
}

}  // namespace tandem::backend::cuda

// A read-only memory map of a whole file, unmapped with its owner. Weights and token shards are
// read through it, so opening a large file costs no copy.
#pragma once

#include <cstddef>
#include <string>

namespace tandem::io {

class MappedFile {
public:
    MappedFile() = default;
    explicit MappedFile(const std::string& path);  // throws Error naming the path
    ~MappedFile();
    MappedFile(MappedFile&& other) noexcept;
    MappedFile& operator=(MappedFile&& other) noexcept;
    MappedFile(const MappedFile&) = delete;
    MappedFile& operator=(const MappedFile&) = delete;

    const unsigned char* data() const { return static_cast<const unsigned char*>(data_); }
    size_t size() const { return size_; }
    const std::string& path() const { return path_; }

private:
    std::string path_;
    void* data_ = nullptr;
    size_t size_ = 0;
};

// Drops the whole pages inside [data, data + bytes) of a read-only file mapping from this
// process's resident memory (they are read again from the file if touched): a loader calls it
// after copying a tensor out, so a model's file and its weights are not resident together.
void release_pages(const void* data, size_t bytes);

}  // namespace tandem::io

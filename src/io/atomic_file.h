// Files that appear complete or not at all: written under a temporary name beside the target,
// fsynced, then renamed over it. A crash or an error leaves at most a *.tmp file behind.
#pragma once

#include <cstddef>
#include <cstdio>
#include <string>
#include <string_view>

namespace tandem::io {

class AtomicFile {
   public:
    // Opens `path`.tmp for writing; throws tandem::Error naming the path on failure.
    explicit AtomicFile(std::string path);
    // Without commit() (an exception on the way), the temporary file is removed.
    ~AtomicFile();
    AtomicFile(const AtomicFile&) = delete;
    AtomicFile& operator=(const AtomicFile&) = delete;

    void write(const void* data, size_t bytes);
    void write_at(size_t offset, const void* data, size_t bytes);  // e.g. a header filled last
    // fsync, rename to the final path, fsync the directory so the rename itself is durable.
    void commit();
    const std::string& path() const { return path_; }

   private:
    std::string path_, tmp_path_;
    std::FILE* file_ = nullptr;
};

void write_file_atomic(const std::string& path, std::string_view contents);
// The whole file; throws tandem::Error naming the path when it cannot be read.
std::string read_file(const std::string& path);

}  // namespace tandem::io

// Files that are either complete or absent: written under a temporary name in the same
// directory, fsynced, renamed over the target, and the directory fsynced. A crash at any moment
// leaves the old file (or none), never a half-written one.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <optional>
#include <string>
#include <string_view>

#include "core/checksum.h"

namespace tandem::io {

class AtomicFile {
public:
    explicit AtomicFile(std::string path);  // opens "<path>.tmp-<pid>" for writing
    ~AtomicFile();                          // removes the temporary file unless committed
    AtomicFile(const AtomicFile&) = delete;
    AtomicFile& operator=(const AtomicFile&) = delete;

    void write(const void* data, size_t bytes);  // buffered
    void write(std::string_view text) { write(text.data(), text.size()); }
    void write_at(size_t offset, const void* data, size_t bytes);  // e.g. a header filled last
    // fsync, rename into place, fsync the directory. Throws Error on any failure (a full disk
    // included), leaving the previous file untouched.
    void commit();
    const std::string& path() const { return path_; }
    // xxHash3 of the file's contents, computed as they were written (so that a manifest needs
    // no second read of a large file); nullopt once write_at has changed earlier bytes.
    std::optional<uint64_t> checksum() const;

private:
    std::string path_, temp_path_;
    std::FILE* file_ = nullptr;
    Xxh3Stream hash_;
    bool hash_valid_ = true;
};

// Returns the contents' xxHash3.
uint64_t write_file_atomic(const std::string& path, std::string_view contents);
std::string read_file(const std::string& path);  // throws Error naming the path
void fsync_directory(const std::string& dir);    // throws Error naming the directory

}  // namespace tandem::io

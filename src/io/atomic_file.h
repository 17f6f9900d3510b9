// Files that are either complete or absent: written under a temporary name in the same
// directory, fsynced, renamed over the target, and the directory fsynced. A crash at any moment
// leaves the old file (or none), never a half-written one.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace tandem::io {

class AtomicFile {
public:
    explicit AtomicFile(std::string path);  // opens "<path>.tmp-<pid>" for writing
    ~AtomicFile();                          // removes the temporary file unless committed
    AtomicFile(const AtomicFile&) = delete;
    AtomicFile& operator=(const AtomicFile&) = delete;

    void write(const void* data, size_t bytes);
    void write(std::string_view text) { write(text.data(), text.size()); }
    // fsync, rename into place, fsync the directory. Throws Error on any failure (a full disk
    // included), leaving the previous file untouched.
    void commit();

private:
    std::string path_, temp_path_;
    int fd_ = -1;
    bool committed_ = false;
};

void write_file_atomic(const std::string& path, std::string_view contents);
std::string read_file(const std::string& path);  // throws Error naming the path
void fsync_directory(const std::string& dir);

}  // namespace tandem::io

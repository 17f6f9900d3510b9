// POSIX implementation of atomic file replacement: a buffer of our own over a file descriptor
// (aligned, for O_DIRECT), fsync and rename for durability.
#include "io/atomic_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/error.h"

namespace tandem::io {

namespace {

std::string errno_text() { return std::strerror(errno); }

constexpr size_t kBufferBytes = size_t(8) << 20;
constexpr size_t kDirectAlignment = 4096;  // covers the logical block size of common disks

}  // namespace

AtomicFile::AtomicFile(std::string path, WriteMode mode)
    : path_(std::move(path)), temp_path_(path_ + ".tmp-" + std::to_string(::getpid())) {
    const int flags = O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC;
    if (mode == WriteMode::Direct) {
        fd_ = ::open(temp_path_.c_str(), flags | O_DIRECT, 0644);
        direct_ = fd_ >= 0;
    }
    if (fd_ < 0) fd_ = ::open(temp_path_.c_str(), flags, 0644);  // Buffered, or O_DIRECT refused
    if (fd_ < 0) throw Error(path_, ": cannot create ", temp_path_, ": ", errno_text());
    buffer_ = static_cast<char*>(std::aligned_alloc(kDirectAlignment, kBufferBytes));
    if (!buffer_) {
        ::close(fd_);
        std::remove(temp_path_.c_str());
        throw Error(path_, ": out of memory for the write buffer");
    }
}

AtomicFile::~AtomicFile() {
    std::free(buffer_);
    if (fd_ >= 0) {
        ::close(fd_);
        std::remove(temp_path_.c_str());
    }
}

void AtomicFile::write_fully(const void* data, size_t bytes) {
    const char* p = static_cast<const char*>(data);
    while (bytes > 0) {
        const ssize_t n = ::write(fd_, p, bytes);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) throw Error(path_, ": write failed: ", n < 0 ? errno_text() : std::string("no progress"));
        p += n;
        bytes -= size_t(n);
    }
}

void AtomicFile::flush(bool final) {
    size_t out = buffered_;
    if (direct_) {
        // O_DIRECT takes whole blocks only: the tail waits for more data, or is padded at the
        // end and the padding cut off again by ftruncate.
        out = final ? (buffered_ + kDirectAlignment - 1) / kDirectAlignment * kDirectAlignment
                    : buffered_ / kDirectAlignment * kDirectAlignment;
        std::memset(buffer_ + buffered_, 0, out - buffered_);
    }
    write_fully(buffer_, out);
    const size_t kept = buffered_ > out ? buffered_ - out : 0;
    std::memmove(buffer_, buffer_ + out, kept);
    buffered_ = kept;
}

void AtomicFile::write(const void* data, size_t bytes) {
    hash_.update(data, bytes);
    size_ += bytes;
    const char* p = static_cast<const char*>(data);
    while (bytes > 0) {
        const size_t n = std::min(bytes, kBufferBytes - buffered_);
        std::memcpy(buffer_ + buffered_, p, n);
        buffered_ += n;
        p += n;
        bytes -= n;
        if (buffered_ == kBufferBytes) flush(false);
    }
}

void AtomicFile::write_at(size_t offset, const void* data, size_t bytes) {
    TANDEM_ASSERT(!direct_, path_);
    TANDEM_ASSERT(offset + bytes <= size_, offset, bytes, size_);
    flush(false);
    const ssize_t n = ::pwrite(fd_, data, bytes, static_cast<off_t>(offset));
    if (n != static_cast<ssize_t>(bytes)) throw Error(path_, ": write failed: ", errno_text());
    hash_valid_ = false;
}

std::optional<uint64_t> AtomicFile::checksum() const {
    if (!hash_valid_) return std::nullopt;
    return hash_.digest();
}

void AtomicFile::commit() {
    flush(true);
    if (direct_ && ::ftruncate(fd_, static_cast<off_t>(size_)) != 0)
        throw Error(path_, ": cannot cut the block padding: ", errno_text());
    if (::fsync(fd_) != 0) throw Error(path_, ": write failed: ", errno_text());
    const int closed = ::close(fd_);
    fd_ = -1;
    if (closed != 0) {
        const std::string why = errno_text();
        std::remove(temp_path_.c_str());
        throw Error(path_, ": close failed: ", why);
    }
    if (std::rename(temp_path_.c_str(), path_.c_str()) != 0) {
        const std::string why = errno_text();
        std::remove(temp_path_.c_str());
        throw Error(path_, ": cannot rename ", temp_path_, " into place: ", why);
    }
    fsync_directory(std::filesystem::path(path_).parent_path().string());
}

uint64_t write_file_atomic(const std::string& path, std::string_view contents) {
    AtomicFile file(path);
    file.write(contents);
    file.commit();
    return *file.checksum();
}

std::string read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw Error(path, ": cannot open: ", errno_text());
    std::ostringstream out;
    out << in.rdbuf();
    if (in.bad()) throw Error(path, ": read failed: ", errno_text());
    return std::move(out).str();
}

void fsync_directory(const std::string& dir) {
    const std::string name = dir.empty() ? "." : dir;
    const int fd = ::open(name.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) throw Error(name, ": cannot open directory to fsync: ", errno_text());
    const int rc = ::fsync(fd);
    ::close(fd);
    if (rc != 0) throw Error(name, ": fsync of directory failed: ", errno_text());
}

}  // namespace tandem::io

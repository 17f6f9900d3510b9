// POSIX implementation of atomic file replacement.
#include "io/atomic_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/error.h"

namespace tandem::io {

namespace {
std::string errno_text() { return std::strerror(errno); }
}  // namespace

AtomicFile::AtomicFile(std::string path)
    : path_(std::move(path)), temp_path_(path_ + ".tmp-" + std::to_string(::getpid())) {
    fd_ = ::open(temp_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd_ < 0) throw Error(path_, ": cannot create ", temp_path_, ": ", errno_text());
}

AtomicFile::~AtomicFile() {
    if (fd_ >= 0) ::close(fd_);
    if (!committed_) ::unlink(temp_path_.c_str());
}

void AtomicFile::write(const void* data, size_t bytes) {
    const char* p = static_cast<const char*>(data);
    while (bytes > 0) {
        const ssize_t n = ::write(fd_, p, bytes);
        if (n < 0) {
            if (errno == EINTR) continue;
            throw Error(path_, ": write failed: ", errno_text());
        }
        p += n;
        bytes -= static_cast<size_t>(n);
    }
}

void AtomicFile::commit() {
    if (::fsync(fd_) != 0) throw Error(path_, ": fsync failed: ", errno_text());
    if (::close(fd_) != 0) {
        fd_ = -1;
        throw Error(path_, ": close failed: ", errno_text());
    }
    fd_ = -1;
    if (::rename(temp_path_.c_str(), path_.c_str()) != 0)
        throw Error(path_, ": cannot rename ", temp_path_, " into place: ", errno_text());
    committed_ = true;
    fsync_directory(std::filesystem::path(path_).parent_path().string());
}

void write_file_atomic(const std::string& path, std::string_view contents) {
    AtomicFile file(path);
    file.write(contents);
    file.commit();
}

std::string read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw Error(path, ": cannot open: ", errno_text());
    std::ostringstream out;
    out << in.rdbuf();
    if (in.bad()) throw Error(path, ": read failed");
    return out.str();
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

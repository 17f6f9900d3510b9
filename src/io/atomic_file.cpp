// POSIX implementation of atomic file replacement: stdio for buffering, fsync and rename for
// durability.
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
    file_ = std::fopen(temp_path_.c_str(), "wbe");
    if (!file_) throw Error(path_, ": cannot create ", temp_path_, ": ", errno_text());
}

AtomicFile::~AtomicFile() {
    if (file_) {
        std::fclose(file_);
        std::remove(temp_path_.c_str());
    }
}

void AtomicFile::write(const void* data, size_t bytes) {
    if (bytes && std::fwrite(data, 1, bytes, file_) != bytes)
        throw Error(path_, ": write failed: ", errno_text());
    hash_.update(data, bytes);
}

void AtomicFile::write_at(size_t offset, const void* data, size_t bytes) {
    const long here = std::ftell(file_);
    if (here < 0 || std::fseek(file_, static_cast<long>(offset), SEEK_SET) != 0)
        throw Error(path_, ": seek failed: ", errno_text());
    write(data, bytes);
    hash_valid_ = false;
    if (std::fseek(file_, here, SEEK_SET) != 0) throw Error(path_, ": seek failed: ", errno_text());
}

std::optional<uint64_t> AtomicFile::checksum() const {
    if (!hash_valid_) return std::nullopt;
    return hash_.digest();
}

void AtomicFile::commit() {
    if (std::fflush(file_) != 0 || ::fsync(::fileno(file_)) != 0)
        throw Error(path_, ": write failed: ", errno_text());
    const int closed = std::fclose(file_);
    file_ = nullptr;
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

// AtomicFile on POSIX: stdio for buffering, fsync/rename for durability.
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

std::string errno_text() {
    return std::strerror(errno);
}

void fsync_directory(const std::string& path) {
    std::string dir = std::filesystem::path(path).parent_path().string();
    int fd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY);
    if (fd < 0) return;  // best effort: some file systems do not open directories
    ::fsync(fd);
    ::close(fd);
}

}  // namespace

AtomicFile::AtomicFile(std::string path) : path_(std::move(path)), tmp_path_(path_ + ".tmp") {
    file_ = std::fopen(tmp_path_.c_str(), "wb");
    if (!file_) throw Error(tmp_path_, ": cannot create: ", errno_text());
}

AtomicFile::~AtomicFile() {
    if (file_) {
        std::fclose(file_);
        std::remove(tmp_path_.c_str());
    }
}

void AtomicFile::write(const void* data, size_t bytes) {
    if (bytes && std::fwrite(data, 1, bytes, file_) != bytes)
        throw Error(tmp_path_, ": write failed: ", errno_text());
}

void AtomicFile::write_at(size_t offset, const void* data, size_t bytes) {
    long here = std::ftell(file_);
    if (std::fseek(file_, long(offset), SEEK_SET) != 0)
        throw Error(tmp_path_, ": seek failed: ", errno_text());
    write(data, bytes);
    std::fseek(file_, here, SEEK_SET);
}

void AtomicFile::commit() {
    if (std::fflush(file_) != 0 || ::fsync(fileno(file_)) != 0)
        throw Error(tmp_path_, ": flush failed: ", errno_text());
    std::fclose(file_);
    file_ = nullptr;
    if (std::rename(tmp_path_.c_str(), path_.c_str()) != 0) {
        std::string why = errno_text();
        std::remove(tmp_path_.c_str());
        throw Error(path_, ": cannot rename ", tmp_path_, " into place: ", why);
    }
    fsync_directory(path_);
}

void write_file_atomic(const std::string& path, std::string_view contents) {
    AtomicFile file(path);
    file.write(contents.data(), contents.size());
    file.commit();
}

std::string read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw Error(path, ": cannot open: ", errno_text());
    std::ostringstream data;
    data << in.rdbuf();
    if (in.bad()) throw Error(path, ": read failed: ", errno_text());
    return std::move(data).str();
}

}  // namespace tandem::io

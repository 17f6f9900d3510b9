// Token shard format (little-endian, as every machine tandem targets):
//   bytes  0..7   magic "TDMTOKS\0"
//   bytes  8..11  uint32 version (1)
//   bytes 12..15  uint32 token_bytes: 2 (ids are uint16) or 4 (uint32)
//   bytes 16..23  uint64 n_tokens
//   bytes 24..31  uint64 vocab_size of the tokenizer that made the shard
//   bytes 32..39  uint64 xxh3_64 of the payload
//   bytes 40..63  zero
//   bytes 64..    payload: n_tokens ids of token_bytes each
#include "io/token_shards.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "core/checksum.h"
#include "core/error.h"

namespace tandem::io {

namespace {

void encode_header(const ShardHeader& h, uint8_t* out) {
    std::memset(out, 0, kShardHeaderBytes);
    std::memcpy(out, kShardMagic, 8);
    std::memcpy(out + 8, &h.version, 4);
    std::memcpy(out + 12, &h.token_bytes, 4);
    std::memcpy(out + 16, &h.n_tokens, 8);
    std::memcpy(out + 24, &h.vocab_size, 8);
    std::memcpy(out + 32, &h.checksum, 8);
}

}  // namespace

uint32_t token_bytes_for_vocab(int64_t vocab_size) {
    return vocab_size <= 65536 ? 2 : 4;
}

ShardWriter::ShardWriter(std::string path, int64_t vocab_size) : file_(std::move(path)) {
    header_.token_bytes = token_bytes_for_vocab(vocab_size);
    header_.vocab_size = uint64_t(vocab_size);
    uint8_t blank[kShardHeaderBytes] = {};
    file_.write(blank, sizeof blank);  // the real header is written by commit()
}

void ShardWriter::append(std::span<const int32_t> ids) {
    buffer_.resize(ids.size() * header_.token_bytes);
    if (header_.token_bytes == 2) {
        auto* out = reinterpret_cast<uint16_t*>(buffer_.data());
        for (size_t i = 0; i < ids.size(); ++i) out[i] = uint16_t(ids[i]);
    } else {
        std::memcpy(buffer_.data(), ids.data(), buffer_.size());
    }
    hash_.update(buffer_.data(), buffer_.size());
    file_.write(buffer_.data(), buffer_.size());
    header_.n_tokens += ids.size();
}

ShardHeader ShardWriter::commit() {
    header_.checksum = hash_.digest();
    uint8_t bytes[kShardHeaderBytes];
    encode_header(header_, bytes);
    file_.write_at(0, bytes, sizeof bytes);
    file_.commit();
    return header_;
}

MappedShard::MappedShard(std::string path) : path_(std::move(path)) {
    int fd = ::open(path_.c_str(), O_RDONLY);
    if (fd < 0) throw Error(path_, ": cannot open token shard: ", std::strerror(errno));
    struct stat st {};
    ::fstat(fd, &st);
    size_ = size_t(st.st_size);
    if (size_ < kShardHeaderBytes) {
        ::close(fd);
        throw Error(path_, ": truncated token shard: ", size_, " bytes, less than the ",
                    kShardHeaderBytes, "-byte header");
    }
    void* p = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
    ::close(fd);
    if (p == MAP_FAILED) throw Error(path_, ": cannot map token shard: ", std::strerror(errno));
    data_ = static_cast<const uint8_t*>(p);

    auto fail = [&](const std::string& why) {
        ::munmap(const_cast<uint8_t*>(data_), size_);
        data_ = nullptr;
        throw Error(path_, ": ", why);
    };
    if (std::memcmp(data_, kShardMagic, 8) != 0) fail("not a tandem token shard (bad magic)");
    std::memcpy(&header_.version, data_ + 8, 4);
    std::memcpy(&header_.token_bytes, data_ + 12, 4);
    std::memcpy(&header_.n_tokens, data_ + 16, 8);
    std::memcpy(&header_.vocab_size, data_ + 24, 8);
    std::memcpy(&header_.checksum, data_ + 32, 8);
    if (header_.version != kShardVersion)
        fail(Error::concat("token shard version ", header_.version,
                           " is not supported (this "
                           "tandem reads version ",
                           kShardVersion, ")"));
    if (header_.token_bytes != 2 && header_.token_bytes != 4)
        fail(Error::concat("token size ", header_.token_bytes, " bytes is neither 2 nor 4"));
    if (header_.token_bytes != token_bytes_for_vocab(int64_t(header_.vocab_size)))
        fail(Error::concat("token size ", header_.token_bytes, " does not suit vocab size ",
                           header_.vocab_size));
    uint64_t want = kShardHeaderBytes + header_.n_tokens * header_.token_bytes;
    if (want != size_)
        fail(Error::concat(size_ < want ? "truncated" : "oversized",
                           " token shard: the header says ", header_.n_tokens, " tokens (", want,
                           " bytes) but the file has ", size_, " bytes (re-run tandem prepare)"));
}

MappedShard::~MappedShard() {
    if (data_) ::munmap(const_cast<uint8_t*>(data_), size_);
}

MappedShard::MappedShard(MappedShard&& other) noexcept
    : path_(std::move(other.path_)),
      header_(other.header_),
      data_(other.data_),
      size_(other.size_) {
    other.data_ = nullptr;
}

void MappedShard::verify() const {
    uint64_t got = xxh3_64(data_ + kShardHeaderBytes, size_ - kShardHeaderBytes);
    if (got != header_.checksum)
        throw Error(path_, ": checksum mismatch: the header says xxh3 ", hex64(header_.checksum),
                    " but the tokens hash to ", hex64(got),
                    " (the shard is corrupted; re-run tandem prepare)");
}

void MappedShard::copy_tokens(uint64_t first, std::span<int32_t> out) const {
    TANDEM_ASSERT(first + out.size() <= header_.n_tokens, first, out.size(), header_.n_tokens);
    const uint8_t* p = data_ + kShardHeaderBytes + first * header_.token_bytes;
    if (header_.token_bytes == 2) {
        for (size_t i = 0; i < out.size(); ++i) {
            uint16_t v;
            std::memcpy(&v, p + 2 * i, 2);
            out[i] = int32_t(v);
        }
    } else {
        std::memcpy(out.data(), p, out.size() * 4);
    }
}

}  // namespace tandem::io

// Token shard files: a 64-byte header and the token ids of a stretch of documents, written by
// `tandem prepare` and memory-mapped by the data loader. This file owns the format only; which
// documents go where is prepare.cpp's business.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "core/checksum.h"
#include "io/atomic_file.h"

namespace tandem::io {

inline constexpr char kShardMagic[8] = {'T', 'D', 'M', 'T', 'O', 'K', 'S', '\0'};
inline constexpr uint32_t kShardVersion = 1;
inline constexpr size_t kShardHeaderBytes = 64;

struct ShardHeader {
    uint32_t version = kShardVersion;
    uint32_t token_bytes = 2;  // 2 (uint16) when every id fits, else 4 (uint32)
    uint64_t n_tokens = 0;
    uint64_t vocab_size = 0;  // of the tokenizer that made the shard
    uint64_t checksum = 0;    // xxh3_64 of the payload bytes
};

// 2 when every id of a vocabulary of this size fits in uint16, else 4.
uint32_t token_bytes_for_vocab(int64_t vocab_size);

// Writes one shard under a temporary name; commit() fills the header and renames it into place.
class ShardWriter {
   public:
    ShardWriter(std::string path, int64_t vocab_size);
    void append(std::span<const int32_t> ids);
    uint64_t n_tokens() const { return header_.n_tokens; }
    // Returns the final header (with the checksum), as meta.json records it.
    ShardHeader commit();

   private:
    AtomicFile file_;
    ShardHeader header_;
    Xxh3Stream hash_;
    std::vector<uint8_t> buffer_;
};

// A shard mapped read-only. Opening checks the header against the file size; verify() hashes the
// payload. Both throw tandem::Error naming the file and the numbers that disagree.
class MappedShard {
   public:
    explicit MappedShard(std::string path);
    ~MappedShard();
    MappedShard(MappedShard&& other) noexcept;
    MappedShard& operator=(MappedShard&&) = delete;

    void verify() const;
    const ShardHeader& header() const { return header_; }
    const std::string& path() const { return path_; }
    uint64_t n_tokens() const { return header_.n_tokens; }
    // out[i] = token (first + i) for i < out.size(); the caller keeps within n_tokens().
    void copy_tokens(uint64_t first, std::span<int32_t> out) const;

   private:
    std::string path_;
    ShardHeader header_;
    const uint8_t* data_ = nullptr;  // the whole file
    size_t size_ = 0;
};

}  // namespace tandem::io

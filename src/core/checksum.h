// xxHash3 (64-bit) checksums, through libxxhash: one call for a buffer, a streaming hasher for
// data that arrives in pieces (files written in chunks, token shards).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace tandem {

uint64_t xxh3_64(const void* data, size_t bytes);
std::string hex64(uint64_t value);  // 16 lower-case hex digits

class Xxh3Stream {
public:
    Xxh3Stream();
    ~Xxh3Stream();
    Xxh3Stream(const Xxh3Stream&) = delete;
    Xxh3Stream& operator=(const Xxh3Stream&) = delete;

    void update(const void* data, size_t bytes);
    uint64_t digest() const;

private:
    void* state_;
};

}  // namespace tandem

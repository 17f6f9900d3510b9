// Thin wrappers over libxxhash's XXH3 64-bit functions.
#include "core/checksum.h"

#include <xxhash.h>

#include <cstdio>

#include "core/error.h"

namespace tandem {

uint64_t xxh3_64(const void* data, size_t bytes) { return XXH3_64bits(data, bytes); }

std::string hex64(uint64_t value) {
    char text[17];
    std::snprintf(text, sizeof text, "%016llx", static_cast<unsigned long long>(value));
    return text;
}

Xxh3Stream::Xxh3Stream() : state_(XXH3_createState()) {
    TANDEM_ASSERT(state_ != nullptr);
    XXH3_64bits_reset(static_cast<XXH3_state_t*>(state_));
}

Xxh3Stream::~Xxh3Stream() { XXH3_freeState(static_cast<XXH3_state_t*>(state_)); }

void Xxh3Stream::update(const void* data, size_t bytes) {
    XXH3_64bits_update(static_cast<XXH3_state_t*>(state_), data, bytes);
}

uint64_t Xxh3Stream::digest() const { return XXH3_64bits_digest(static_cast<XXH3_state_t*>(state_)); }

}  // namespace tandem

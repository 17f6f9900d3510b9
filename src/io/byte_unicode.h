// GPT-2's reversible map between bytes and printable Unicode characters. Byte-level BPE
// vocabularies (encoder.json, tokenizer.json) spell every token in these characters; tandem keeps
// raw bytes.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace tandem::io {

// The code point that stands for byte `b`: printable Latin-1 bytes stand for themselves, the other
// 68 bytes (controls, space, soft hyphen, ...) are moved to U+0100 and up, in byte order.
char32_t byte_to_unicode(uint8_t b);

// The raw bytes of a token spelled in the map's characters, or nothing when `spelled` is not valid
// UTF-8 or holds a character outside the map.
std::optional<std::string> unicode_to_bytes(std::string_view spelled);

// The spelling of raw bytes in the map's characters (UTF-8).
std::string bytes_to_unicode(std::string_view bytes);

}  // namespace tandem::io

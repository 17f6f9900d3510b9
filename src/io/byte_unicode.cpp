// The byte <-> character table of GPT-2's encoder.py (bytes_to_unicode), built once.
#include "io/byte_unicode.h"

#include <array>

namespace tandem::io {

namespace {

struct Tables {
    std::array<char32_t, 256> to_unicode{};
    std::array<int16_t, 324> to_byte{};  // code points stay below 256 + 68

    Tables() {
        to_byte.fill(-1);
        auto printable = [](int b) {
            return (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
        };
        int moved = 0;
        for (int b = 0; b < 256; ++b) {
            char32_t c = printable(b) ? char32_t(b) : char32_t(256 + moved++);
            to_unicode[b] = c;
            to_byte[c] = int16_t(b);
        }
    }
};

const Tables& tables() {
    static const Tables t;
    return t;
}

void append_utf8(std::string& out, char32_t c) {
    if (c < 0x80) {
        out += char(c);
    } else if (c < 0x800) {
        out += char(0xC0 | (c >> 6));
        out += char(0x80 | (c & 0x3F));
    } else {
        out += char(0xE0 | (c >> 12));
        out += char(0x80 | ((c >> 6) & 0x3F));
        out += char(0x80 | (c & 0x3F));
    }
}

}  // namespace

char32_t byte_to_unicode(uint8_t b) {
    return tables().to_unicode[b];
}

std::optional<std::string> unicode_to_bytes(std::string_view spelled) {
    const Tables& t = tables();
    std::string out;
    out.reserve(spelled.size());
    for (size_t i = 0; i < spelled.size();) {
        auto c0 = uint8_t(spelled[i]);
        char32_t c;
        if (c0 < 0x80) {
            c = c0;
            i += 1;
        } else if ((c0 & 0xE0) == 0xC0 && i + 1 < spelled.size() &&
                   (uint8_t(spelled[i + 1]) & 0xC0) == 0x80) {
            c = (char32_t(c0 & 0x1F) << 6) | (uint8_t(spelled[i + 1]) & 0x3F);
            i += 2;
        } else {
            return std::nullopt;  // every character of the map fits in two UTF-8 bytes
        }
        if (c >= t.to_byte.size() || t.to_byte[c] < 0) return std::nullopt;
        out += char(t.to_byte[c]);
    }
    return out;
}

std::string bytes_to_unicode(std::string_view bytes) {
    std::string out;
    out.reserve(bytes.size() * 2);
    for (char b : bytes) append_utf8(out, byte_to_unicode(uint8_t(b)));
    return out;
}

}  // namespace tandem::io

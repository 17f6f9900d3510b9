// NFC through utf8proc (Debian's libutf8proc-dev). The quick check is this file's own: utf8proc has
// no NFC_Quick_Check property, so it is derived from the properties utf8proc does expose.
#include "io/normalizer.h"

#include <utf8proc.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "core/error.h"

namespace tandem::io {

namespace {

// utf8proc (up to 2.8) marks a code point that can be the second of a primary composition by a
// comb_index at or above 0x8000 (0xFFFF: none). tests/io/normalizer_test.cpp checks this against
// every primary composite of Unicode, so a utf8proc that changes the encoding fails there.
bool can_compose_with_previous(const utf8proc_property_t* p) {
    return p->comb_index != UINT16_MAX && p->comb_index >= 0x8000;
}

bool is_hangul_vowel_or_trailing_jamo(char32_t c) {
    // Hangul composes algorithmically (L + V -> LV, LV + T -> LVT), outside utf8proc's table.
    return (c >= 0x1161 && c <= 0x1175) || (c >= 0x11A8 && c <= 0x11C2);
}

// Decodes one code point of valid UTF-8 at text[i]; returns its length, or 0 when the bytes there
// are not valid UTF-8.
size_t decode(std::string_view text, size_t i, char32_t& c) {
    utf8proc_int32_t cp = 0;
    auto n = utf8proc_iterate(reinterpret_cast<const utf8proc_uint8_t*>(text.data() + i),
                              utf8proc_ssize_t(text.size() - i), &cp);
    if (n <= 0) return 0;
    c = char32_t(cp);
    return size_t(n);
}

// NFC of `text`, which may hold invalid UTF-8: valid runs through utf8proc, invalid bytes copied.
void append_nfc(std::string_view text, std::string& out) {
    size_t i = 0;
    while (i < text.size()) {
        // The longest run of valid UTF-8 from i, then the invalid bytes after it.
        size_t end = i;
        char32_t c = 0;
        while (end < text.size()) {
            size_t len = decode(text, end, c);
            if (len == 0) break;
            end += len;
        }
        if (end > i) {
            utf8proc_uint8_t* normalized = nullptr;
            auto len = utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(text.data() + i),
                                    utf8proc_ssize_t(end - i), &normalized,
                                    utf8proc_option_t(UTF8PROC_STABLE | UTF8PROC_COMPOSE));
            // Valid UTF-8 never fails; only running out of memory does.
            if (len < 0) throw Error("NFC normalization failed: ", utf8proc_errmsg(len));
            out.append(reinterpret_cast<const char*>(normalized), size_t(len));
            std::free(normalized);
        }
        while (end < text.size() && decode(text, end, c) == 0) out += text[end++];
        i = end;
    }
}

// One bit per code point: set when the code point passes the quick check. Built once (about
// 10 ms) from utf8proc's properties, so that the check is a lookup, and exact for precomposed
// letters: ệ (U+1EC7) decomposes but NFC gives it back, so Vietnamese passes without a copy.
class QuickTable {
   public:
    QuickTable() : bits_((0x110000 + 63) / 64, 0) {
        for (char32_t c = 0; c < 0x110000; ++c)
            if (passes(c)) bits_[c / 64] |= uint64_t(1) << (c % 64);
    }
    bool test(char32_t c) const { return c < 0x110000 && (bits_[c / 64] >> (c % 64)) & 1; }

   private:
    static bool passes(char32_t c) {
        if (c < 0x300) return true;  // the first code point whose NFC_Quick_Check is not Yes
        if (c >= 0xD800 && c <= 0xDFFF) return false;
        if (is_hangul_vowel_or_trailing_jamo(c)) return false;
        const utf8proc_property_t* p = utf8proc_get_property(utf8proc_int32_t(c));
        if (p->combining_class != 0 || can_compose_with_previous(p)) return false;
        // A compatibility decomposition (decomp_type != 0) is NFKC's business, not NFC's; a
        // canonical one passes when NFC composes it back (not a singleton or an exclusion).
        if (p->decomp_seqindex == UINT16_MAX || p->decomp_type != 0) return true;
        utf8proc_uint8_t buf[4];
        auto n = utf8proc_encode_char(utf8proc_int32_t(c), buf);
        std::string one(reinterpret_cast<const char*>(buf), size_t(n)), back;
        append_nfc(one, back);
        return back == one;
    }
    std::vector<uint64_t> bits_;
};

const QuickTable& quick_table() {
    static const QuickTable table;
    return table;
}

}  // namespace

bool is_nfc_quick_code_point(char32_t c) {
    return c < 0x300 || quick_table().test(c);
}

bool is_nfc_quick(std::string_view text) {
    const size_t n = text.size();
    size_t i = 0;
    while (i < n) {
        // Eight ASCII bytes at a time: the common case for source code and English.
        if (i + 8 <= n) {
            uint64_t word;
            std::memcpy(&word, text.data() + i, 8);
            if ((word & 0x8080808080808080ull) == 0) {
                i += 8;
                continue;
            }
        }
        const uint8_t b = uint8_t(text[i]);
        if (b < 0xCC) {  // ASCII, a continuation byte, or the lead of a code point below U+0300
            ++i;
            continue;
        }
        char32_t c = 0;
        size_t len = decode(text, i, c);
        if (len == 0) {  // not valid UTF-8: copied unchanged by to_nfc
            ++i;
            continue;
        }
        if (!is_nfc_quick_code_point(c)) return false;
        i += len;
    }
    return true;
}

// NFC changes nothing across a code point that passes the quick check (a starter that composes
// with nothing before it) or an invalid byte: only the stretches between such boundaries that
// hold a failing code point go through utf8proc, the rest is copied.
std::string to_nfc(std::string_view text) {
    std::string out;
    out.reserve(text.size());
    const size_t n = text.size();
    size_t copied = 0, boundary = 0, i = 0;
    auto passes_at = [&](size_t at, size_t& len) {
        const uint8_t b = uint8_t(text[at]);
        len = 1;
        if (b < 0x80 || (b >= 0xC0 && b < 0xCC)) return true;  // below U+0300 (or invalid)
        char32_t c = 0;
        size_t l = decode(text, at, c);
        if (l == 0) return true;  // an invalid byte: to be copied, so a boundary too
        len = l;
        return is_nfc_quick_code_point(c);
    };
    while (i < n) {
        const uint8_t b = uint8_t(text[i]);
        if (b >= 0x80 && b < 0xC0) {  // a continuation byte of the code point before
            ++i;
            continue;
        }
        size_t len = 0;
        if (passes_at(i, len)) {
            boundary = i;
            i += len;
            continue;
        }
        size_t start = std::max(boundary, copied), end = i + len;
        while (end < n) {
            if (uint8_t(text[end]) >= 0x80 && uint8_t(text[end]) < 0xC0) {
                ++end;  // a stray continuation byte: leave it to append_nfc
                continue;
            }
            if (passes_at(end, len)) break;
            end += len;
        }
        out.append(text.substr(copied, start - copied));
        append_nfc(text.substr(start, end - start), out);
        copied = boundary = i = end;
    }
    out.append(text.substr(copied));
    return out;
}

std::string_view nfc_view(std::string_view text, std::string& buffer) {
    if (is_nfc_quick(text)) return text;
    buffer = to_nfc(text);
    return buffer;
}

}  // namespace tandem::io

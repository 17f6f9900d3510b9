// NFC through utf8proc (Debian's libutf8proc-dev). The quick check is this file's own: utf8proc has
// no NFC_Quick_Check property, so it is derived from the properties utf8proc does expose.
#include "io/normalizer.h"

#include <utf8proc.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>

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

}  // namespace

bool is_nfc_quick_code_point(char32_t c) {
    if (c < 0x300) return true;  // the first code point whose NFC_Quick_Check is not Yes
    if (is_hangul_vowel_or_trailing_jamo(c)) return false;
    const utf8proc_property_t* p = utf8proc_get_property(utf8proc_int32_t(c));
    // A compatibility decomposition (decomp_type != 0) is NFKC's business, not NFC's.
    bool canonical_decomposition = p->decomp_seqindex != UINT16_MAX && p->decomp_type == 0;
    return p->combining_class == 0 && !canonical_decomposition && !can_compose_with_previous(p);
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

std::string to_nfc(std::string_view text) {
    std::string out;
    out.reserve(text.size());
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
    return out;
}

std::string_view nfc_view(std::string_view text, std::string& buffer) {
    if (is_nfc_quick(text)) return text;
    buffer = to_nfc(text);
    return buffer;
}

}  // namespace tandem::io

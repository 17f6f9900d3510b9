#include "io/normalizer.h"

#include <gtest/gtest.h>
#include <utf8proc.h>

#include <cstdlib>
#include <random>
#include <string>
#include <vector>

namespace tandem::io {
namespace {

std::string utf8(char32_t c) {
    utf8proc_uint8_t buf[4];
    auto n = utf8proc_encode_char(utf8proc_int32_t(c), buf);
    return std::string(reinterpret_cast<const char*>(buf), size_t(n));
}

bool is_surrogate(char32_t c) {
    return c >= 0xD800 && c <= 0xDFFF;
}

TEST(Normalizer, ComposesDecomposedAccents) {
    // "café Amélie" with each é written as e + U+0301 COMBINING ACUTE ACCENT.
    const std::string nfd = "cafe\xCC\x81 Ame\xCC\x81lie";
    EXPECT_FALSE(is_nfc_quick(nfd));
    EXPECT_EQ(to_nfc(nfd), "caf\xC3\xA9 Am\xC3\xA9lie");
    std::string buffer;
    EXPECT_EQ(nfc_view(nfd, buffer), "caf\xC3\xA9 Am\xC3\xA9lie");
}

TEST(Normalizer, ComposesHangulJamoAndReordersMarks) {
    EXPECT_EQ(to_nfc(utf8(0x1100) + utf8(0x1161) + utf8(0x11A8)), utf8(0xAC01));  // 각
    EXPECT_EQ(to_nfc(utf8(0xAC00) + utf8(0x11A8)), utf8(0xAC01));                 // LV + T
    // Vietnamese ệ: e + dot below (ccc 220) + circumflex (ccc 230), in either order.
    EXPECT_EQ(to_nfc("e" + utf8(0x0302) + utf8(0x0323)), utf8(0x1EC7));
    EXPECT_EQ(to_nfc("e" + utf8(0x0323) + utf8(0x0302)), utf8(0x1EC7));
    // A singleton: U+212B ANGSTROM SIGN becomes Å.
    EXPECT_EQ(to_nfc(utf8(0x212B)), utf8(0x00C5));
}

TEST(Normalizer, NfcTextPassesTheQuickCheckUnchanged) {
    for (std::string text : {std::string("plain ASCII, 12345 <|endoftext|>\n\t"),
                             std::string("caf\xC3\xA9 na\xC3\xAFve \xC3\x9F"),
                             utf8(0x4E2D) + utf8(0x6587) + utf8(0xD55C) + utf8(0xAD6D),  // 中文한국
                             utf8(0x1F469) + utf8(0x200D) + utf8(0x1F4BB)}) {  // ZWJ emoji
        EXPECT_TRUE(is_nfc_quick(text)) << text;
        EXPECT_EQ(to_nfc(text), text);
        std::string buffer;
        EXPECT_EQ(nfc_view(text, buffer).data(), text.data()) << "NFC text must not be copied";
    }
}

TEST(Normalizer, InvalidUtf8IsKeptAndBreaksComposition) {
    const std::string text =
        "\xFF"
        "e\xCC\x81"
        "\xC3"
        "\xCC\x81"
        "x\xFE";
    EXPECT_EQ(to_nfc(text),
              "\xFF"
              "\xC3\xA9"
              "\xC3"
              "\xCC\x81"
              "x\xFE");
    EXPECT_TRUE(is_nfc_quick("abc\xFF\xFE"));
}

// The quick check says "unchanged" only where NFC agrees, for every code point on its own.
TEST(Normalizer, QuickCheckOfEachCodePointAgreesWithNfc) {
    size_t n_quick = 0;
    for (char32_t c = 0; c <= 0x10FFFF; ++c) {
        if (is_surrogate(c) || !is_nfc_quick_code_point(c)) continue;
        ++n_quick;
        const std::string s = utf8(c);
        ASSERT_EQ(to_nfc(s), s) << "U+" << std::hex << uint32_t(c);
    }
    EXPECT_GT(n_quick, 100000u);  // CJK, Hangul syllables, emoji... pass
}

// No code point that passes may compose with the one before it: for every primary composite
// (a canonical pair a + b that NFC puts back together), b must fail the quick check.
TEST(Normalizer, QuickCheckFailsEverySecondHalfOfAComposition) {
    size_t n_pairs = 0;
    for (char32_t p = 0x80; p <= 0x10FFFF; ++p) {
        if (is_surrogate(p)) continue;
        utf8proc_int32_t parts[4];
        int last_boundclass = 0;
        auto n = utf8proc_decompose_char(utf8proc_int32_t(p), parts, 4, UTF8PROC_DECOMPOSE,
                                         &last_boundclass);
        if (n != 2) continue;
        const std::string pair = utf8(char32_t(parts[0])) + utf8(char32_t(parts[1]));
        if (to_nfc(pair) != utf8(p)) continue;  // excluded from composition
        ++n_pairs;
        ASSERT_FALSE(is_nfc_quick_code_point(char32_t(parts[1])))
            << "U+" << std::hex << uint32_t(parts[1]) << " composes into U+" << uint32_t(p);
        EXPECT_FALSE(is_nfc_quick(pair));
    }
    EXPECT_GT(n_pairs, 900u);
    // Hangul composes by arithmetic, outside utf8proc's tables.
    EXPECT_FALSE(is_nfc_quick_code_point(0x1161));
    EXPECT_FALSE(is_nfc_quick_code_point(0x11A8));
}

// to_nfc normalizes only the stretches around failing code points: on random mixes of what NFC
// touches, it must agree with utf8proc's NFC of the whole text.
TEST(Normalizer, StretchByStretchEqualsWholeTextNfc) {
    const std::vector<char32_t> alphabet = {'a',    'e',    ' ',     'A',    0x00E9, 0x0301, 0x0302,
                                            0x0323, 0x0308, 0x1EC7,  0x1100, 0x1161, 0x11A8, 0xAC00,
                                            0x212B, 0x4E2D, 0x1F600, 0x0CBF, 0x0CD5, 0x0344};
    std::mt19937 gen(11);
    for (int trial = 0; trial < 2000; ++trial) {
        std::string text;
        for (size_t n = gen() % 12; n > 0; --n) text += utf8(alphabet[gen() % alphabet.size()]);
        auto* whole = utf8proc_NFC(reinterpret_cast<const utf8proc_uint8_t*>(text.c_str()));
        std::string want(reinterpret_cast<const char*>(whole));
        std::free(whole);
        ASSERT_EQ(to_nfc(text), want) << text;
        if (is_nfc_quick(text)) ASSERT_EQ(want, text);
    }
}

TEST(Normalizer, PrecomposedVietnameseAndKoreanPassTheQuickCheck) {
    EXPECT_TRUE(is_nfc_quick("Ti\xE1\xBA\xBFng Vi\xE1\xBB\x87t \xED\x95\x9C\xEA\xB5\xAD"));
    EXPECT_FALSE(is_nfc_quick_code_point(0x212B));  // a singleton: NFC changes it
    EXPECT_FALSE(is_nfc_quick_code_point(0x0344));  // decomposes to two marks
}

}  // namespace
}  // namespace tandem::io

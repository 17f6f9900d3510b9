#include "core/checksum.h"

#include <gtest/gtest.h>

#include <string>

namespace tandem {
namespace {

TEST(Xxh3, MatchesKnownValueOfEmptyInput) {
    // XXH3_64bits of zero bytes with seed 0, from the xxHash reference.
    EXPECT_EQ(xxh3_64("", 0), 0x2D06800538D394C2ull);
    EXPECT_EQ(hex64(0x2D06800538D394C2ull), "2d06800538d394c2");
}

TEST(Xxh3, StreamingEqualsOneShot) {
    std::string data(100000, 'x');
    for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>(i * 31 + 7);
    Xxh3Stream stream;
    for (size_t at = 0; at < data.size(); at += 777)
        stream.update(data.data() + at, std::min<size_t>(777, data.size() - at));
    EXPECT_EQ(stream.digest(), xxh3_64(data.data(), data.size()));
}

}  // namespace
}  // namespace tandem

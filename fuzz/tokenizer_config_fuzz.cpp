// libFuzzer target for tokenizer_config.json: any bytes, applied to a small fixed model, either
// give a model that BpeTokenizer accepts and whose written config reads back, or are refused with
// tandem::Error. A crash, a failed TANDEM_ASSERT, another exception type or a sanitizer report is
// a bug. Build and run from the repository root (Debian 12: apt-get install clang
// libclang-rt-14-dev):
//   clang++-14 -std=c++20 -O1 -g -fsanitize=fuzzer,address,undefined -Isrc \
//     fuzz/tokenizer_config_fuzz.cpp src/io/tokenizer_config.cpp src/io/json_fields.cpp \
//     src/io/bpe_tokenizer.cpp src/io/pretokenizer.cpp src/io/normalizer.cpp \
//     src/io/byte_unicode.cpp src/io/atomic_file.cpp src/core/error.cpp src/core/checksum.cpp \
//     -lpcre2-8 -lxxhash -lutf8proc -o build/tokenizer_config_fuzz
//   build/tokenizer_config_fuzz -max_len=65536 -timeout=10 -malloc_limit_mb=256 \
//     -max_total_time=600 fuzz/corpus/tokenizer_config
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.h"
#include "io/tokenizer_config.h"

using namespace tandem;

namespace {

// The 256 bytes, "ab" (from a + b), "<|endoftext|>" = 257 and "<|im_start|>" = 258.
io::BpeModel base_model() {
    io::BpeModel m;
    for (int b = 0; b < 256; ++b) m.tokens.push_back(std::string(1, char(b)));
    m.tokens.push_back("ab");
    m.merges.push_back({'a', 'b', 256});
    m.added.push_back({"<|endoftext|>", 257, true});
    m.added.push_back({"<|im_start|>", 258, true});
    m.normalize_nfc = true;
    return m;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    io::BpeModel model = base_model();
    try {
        io::parse_tokenizer_config(model, text, "fuzz/tokenizer_config.json");
    } catch (const Error&) {
        return 0;  // refused, with a message: what a hostile file should get
    }
    io::BpeTokenizer tok(model);
    std::vector<int32_t> ids =
        tok.encode_with_special("ab<|im_start|>e\xCC\x81 \xFF" + std::string(text.substr(0, 32)));
    tok.decode(ids);  // every id encode gives is decodable
    // What tandem writes, tandem reads back onto the same base model.
    io::BpeModel again = base_model();
    io::parse_tokenizer_config(again, io::to_tokenizer_config_json(model), "rewritten");
    if (again.add_bos != model.add_bos || again.add_eos != model.add_eos ||
        again.chat_template != model.chat_template || again.added.size() != model.added.size())
        __builtin_trap();
    return 0;
}

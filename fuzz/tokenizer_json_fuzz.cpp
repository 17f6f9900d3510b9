// libFuzzer target for tokenizer.json: any bytes either load into a model that BpeTokenizer
// accepts, encodes with and writes back to the same model, or are refused with tandem::Error. A
// crash, a failed TANDEM_ASSERT, another exception type, a leak or a sanitizer report is a bug.
// Build and run from the repository root (Debian 12: apt-get install clang libclang-rt-14-dev):
//   clang++-14 -std=c++20 -O1 -g -fsanitize=fuzzer,address,undefined -Isrc \
//     fuzz/tokenizer_json_fuzz.cpp src/io/tokenizer_files.cpp src/io/tokenizer_json_reader.cpp \
//     src/io/tokenizer_config.cpp src/io/json_fields.cpp src/io/bpe_tokenizer.cpp \
//     src/io/pretokenizer.cpp src/io/normalizer.cpp src/io/byte_unicode.cpp \
//     src/io/atomic_file.cpp src/core/error.cpp src/core/checksum.cpp \
//     -lpcre2-8 -lxxhash -lutf8proc -o build/tokenizer_json_fuzz
//   build/tokenizer_json_fuzz -max_len=65536 -timeout=10 -malloc_limit_mb=256 \
//     -max_total_time=600 fuzz/corpus/tokenizer_json
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.h"
#include "io/tokenizer_files.h"

using namespace tandem;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    io::BpeModel model;
    try {
        model = io::parse_hf_tokenizer_json(text, "fuzz/tokenizer.json");
    } catch (const Error&) {
        return 0;  // refused, with a message: what a hostile file should get
    }
    std::optional<io::BpeTokenizer> tok;
    try {
        tok.emplace(model);
    } catch (const Error&) {
        return 0;  // a split pattern PCRE2 does not compile
    }
    // Short texts only: the split pattern comes from the input and may backtrack badly.
    for (std::string_view sample : {std::string_view("Hi caf\xC3\xA9 e\xCC\x81 12 <|x|>\n"),
                                    std::string_view("\xFF\xFE a\0b", 6), text.substr(0, 48)}) {
        std::vector<int32_t> ids = tok->encode_with_special(sample);
        std::string back = tok->decode(ids);  // every id encode gives is decodable
        if (!model.normalize_nfc && !model.add_bos && !model.add_eos && back != sample &&
            model.added.empty())
            __builtin_trap();  // without a normalizer or added tokens, bytes round-trip
    }
    // What tandem writes, tandem reads back to the same vocabulary, merges and flags.
    io::BpeModel again = io::parse_hf_tokenizer_json(io::to_hf_tokenizer_json(model), "rewritten");
    if (again.tokens != model.tokens || again.merges.size() != model.merges.size() ||
        again.normalize_nfc != model.normalize_nfc || again.add_bos != model.add_bos ||
        again.bos_id != model.bos_id || again.pattern != model.pattern)
        __builtin_trap();
    return 0;
}

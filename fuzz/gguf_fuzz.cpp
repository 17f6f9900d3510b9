// libFuzzer target for the GGUF reader and what reads its metadata (the tokenizer and model
// mappings): any bytes must give a reader or a tandem::Error, never a crash, a sanitizer report
// or an allocation out of proportion to the input. Built by hand (the lead wires TANDEM_FUZZ),
// from the repository root, with Debian's clang 14 and libclang-rt-14-dev:
//   clang++ -std=c++20 -g -O1 -fsanitize=fuzzer,address,undefined -Isrc fuzz/gguf_fuzz.cpp \
//     src/io/gguf.cpp src/io/gguf_metadata.cpp src/io/gguf_tokenizer.cpp src/io/byte_unicode.cpp \
//     src/io/mapped_file.cpp src/io/atomic_file.cpp src/model/gguf_model.cpp src/model/config.cpp \
//     src/model/param_layout.cpp src/model/gpt2.cpp src/model/llama.cpp src/core/dtype.cpp \
//     src/core/quant.cpp src/core/error.cpp src/core/checksum.cpp src/core/tensor.cpp \
//     -lxxhash -o build/gguf_fuzz
//   build/gguf_fuzz -jobs=1 -max_total_time=600 -rss_limit_mb=2048 fuzz/corpus/gguf
// The seed corpus (fuzz/corpus/gguf/) holds tiny valid files written by save_gguf.
#include <cstddef>
#include <cstdint>

#include "core/error.h"
#include "io/gguf.h"
#include "io/gguf_tokenizer.h"
#include "infer/gguf_model.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    try {
        const tandem::io::GgufReader reader(data, size, "fuzz.gguf");
        // Touch every tensor's bytes, so that a range the reader accepted but got wrong shows
        // up under AddressSanitizer.
        unsigned sum = 0;
        for (const auto& t : reader.tensors())
            for (size_t i = 0; i < t.bytes; i += 61) sum += static_cast<const uint8_t*>(t.data)[i];
        (void)sum;
        try {
            (void)tandem::io::bpe_model_from_gguf(reader.metadata());
        } catch (const tandem::Error&) {
        }
        try {
            const auto g = tandem::infer::config_from_gguf(reader);
            // An accepted model: every tensor must convert to its HF values (the small ones, to
            // keep the runs fast), transforms and dequantization included.
            for (const auto& t : reader.tensors()) {
                if (t.numel() > (1 << 16)) continue;
                const auto m = tandem::infer::hf_tensor_for_gguf(t.name, g.config, g.architecture);
                std::vector<int64_t> hf_shape;
                (void)tandem::infer::hf_values_from_gguf(t, m, hf_shape);
            }
        } catch (const tandem::Error&) {
        }
    } catch (const tandem::Error&) {
    }
    return 0;
}

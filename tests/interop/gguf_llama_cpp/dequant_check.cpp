// ggml's own GGUF reader against tandem's, on a file tandem wrote: ggml must parse it, see the
// same tensors with the same shapes (its ne[] reversed) and dequantize every tensor (F32, F16,
// BF16, Q8_0, Q4_0) to exactly the values tandem's convert_values gives. Linked against tandem
// and the prebuilt libggml-base of the recipe in llama_side.cpp (peer/ = that recipe's folder):
//   g++ -std=c++20 -O1 -Isrc -Ipeer/src/ggml/include tests/interop/gguf_llama_cpp/dequant_check.cpp
//   \
//     build/dev/libtandem.a -Lpeer/bin -l:libggml-base.so -Wl,-rpath,peer/bin -lxxhash -lpcre2-8 \
//     -lopenblas -fopenmp -o /tmp/dequant_check && /tmp/dequant_check /tmp/out/q4/llama.gguf
#include <cstdio>
#include <cstring>
#include <vector>

#include "core/quant.h"
#include "ggml.h"
#include "gguf.h"
#include "io/gguf.h"

int main(int argc, char** argv) {
    int failures = 0;
    for (int f = 1; f < argc; ++f) {
        const tandem::io::GgufReader ours(argv[f]);
        ggml_context* ctx = nullptr;
        gguf_context* g = gguf_init_from_file(argv[f], {/*no_alloc=*/false, &ctx});
        if (!g) {
            std::printf("%s: ggml refuses the file\n", argv[f]);
            ++failures;
            continue;
        }
        if (gguf_get_n_tensors(g) != int64_t(ours.tensors().size())) ++failures;
        size_t checked = 0, values = 0;
        for (int64_t i = 0; i < gguf_get_n_tensors(g); ++i) {
            ggml_tensor* t = ggml_get_tensor(ctx, gguf_get_tensor_name(g, i));
            const tandem::io::GgufTensor& mine = ours.get(t->name);
            std::vector<int64_t> shape;
            for (int d = ggml_n_dims(t); d-- > 0;) shape.push_back(t->ne[d]);
            const int64_t n = ggml_nelements(t);
            std::vector<float> theirs(n), want(n);
            if (t->type == GGML_TYPE_F32)
                std::memcpy(theirs.data(), t->data, n * 4);
            else
                ggml_get_type_traits(t->type)->to_float(t->data, theirs.data(), n);
            tandem::convert_values(want.data(), tandem::DType::F32, mine.data, mine.dtype, n);
            const bool same = shape == mine.shape &&
                              int(t->type) == int(tandem::io::ggml_type_of(mine.dtype)) &&
                              std::memcmp(theirs.data(), want.data(), n * 4) == 0;
            if (!same) {
                std::printf("%s: tensor %s differs\n", argv[f], t->name);
                ++failures;
            }
            ++checked;
            values += n;
        }
        std::printf("%s: ggml parses it; %zu tensors (%zu values) identical to tandem's\n", argv[f],
                    checked, values);
        gguf_free(g);
        ggml_free(ctx);
    }
    return failures == 0 ? 0 : 1;
}

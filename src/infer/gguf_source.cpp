// A llama.cpp .gguf file as a ModelSource: the metadata mapped to a config (infer/gguf_model.h),
// the tokenizer read from tokenizer.ggml.* (io/gguf_tokenizer.h), and each tensor under its
// Hugging Face name with the converter's changes (Llama's permuted q/k rows, GPT-2's transposed
// products) recorded for load_weights to undo.
#include <numeric>

#include "core/error.h"
#include "infer/gguf_model.h"
#include "infer/model_source.h"
#include "io/gguf.h"
#include "io/gguf_tokenizer.h"

namespace tandem::infer {

namespace {

// Row i of the HF tensor is stored row order[i]: the inverse permutation, applied to indices.
std::vector<int64_t> rope_row_order(int64_t n_heads, int64_t n_rows) {
    std::vector<int64_t> stored(n_rows), order(n_rows);
    std::iota(stored.begin(), stored.end(), 0);
    rope_rows_from_gguf(order.data(), stored.data(), n_heads, n_rows, sizeof(int64_t));
    return order;
}

class GgufSource : public ModelSource {
public:
    explicit GgufSource(const std::string& path) : reader_(path) {
        format_ = ModelFormat::Gguf;
        path_ = path;
        const GgufModelConfig g = config_from_gguf(reader_);
        config_ = g.config;
        tokenizer_ = io::bpe_model_from_gguf(reader_.metadata());
        if (tokenizer_.eos_id >= 0) generation_.stop_ids.push_back(tokenizer_.eos_id);
        for (const io::GgufTensor& t : reader_.tensors()) {
            const GgufTensorMapping m = hf_tensor_for_gguf(t.name, config_, g.architecture);
            SourceTensor s{m.hf_name, t.dtype, t.shape, t.data, path, false, {}};
            if (m.transform == GgufTransform::Transpose) s.is_transposed = true;
            if (m.transform == GgufTransform::RopePermute)
                s.row_order = rope_row_order(m.n_heads, t.shape[0]);
            tensors_.push_back(std::move(s));
        }
    }

private:
    io::GgufReader reader_;
};

}  // namespace

std::unique_ptr<ModelSource> open_gguf_source(const std::string& path) {
    return std::make_unique<GgufSource>(path);
}

}  // namespace tandem::infer

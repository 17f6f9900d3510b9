// The meaning of a GGUF model for tandem: llama.cpp's metadata keys <-> model::ModelConfig, GGUF tensor
// names <-> the Hugging Face names of tandem's layouts, and the value changes llama.cpp's
// converter makes (Llama's q/k rows permuted, GPT-2's Conv1D weights transposed). Reading and
// writing the file is io/gguf.h's job; the tokenizer keys are io/gguf_tokenizer.h's.
//
// Loading (`--model x.gguf`): GgufReader r(path); g = config_from_gguf(r) (checks every tensor's
//   name and shape); tokenizer = bpe_model_from_gguf(r.metadata()); for each t in r.tensors():
//   m = hf_tensor_for_gguf(t.name, g.config, g.architecture), then either f32 values in HF
//   order (hf_values_from_gguf) or, to keep Q8_0/Q4_0 as they are, the raw bytes (transform
//   None), rows moved by rope_rows_from_gguf (RopePermute); Transpose (gpt2) needs f32.
// Exporting (`export --format gguf`): GgufMetadata md; add_config_to_gguf(md, c, bias);
//   add_bpe_model_to_gguf(md, tokenizer); for each HF tensor: m = gguf_tensor_for_hf(...),
//   gguf_tensor_from_hf(m, values, shape, dtype); save_gguf(path, md, infos).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "io/gguf.h"
#include "model/config.h"

namespace tandem::infer {

// What config_from_gguf found. `architecture` is "llama", "qwen2", "qwen3" or "gpt2".
struct GgufModelConfig {
    model::ModelConfig config;
    std::string architecture;
    // Whether blk.N.attn_{q,k,v}.bias are present (Qwen2). Read from the tensor list because
    // model::ModelConfig on this branch has no flag for them yet: see set_qkv_bias in gguf_model.cpp.
    bool has_qkv_bias = false;
};

// Reads general.architecture and the "<arch>." keys (llama.cpp's names and defaults), takes the
// vocabulary size from tokenizer.ggml.tokens (else <arch>.vocab_size, else token_embd's rows),
// ties the embeddings when there is no output.weight, and checks the tensors against tandem's
// layout of the result: each has a place there, of the right shape, and no place is empty (so
// the transforms below may trust the shapes of the tensors it accepted). Refuses by name what
// tandem does not implement (other architectures, RoPE scaling, experts, key/value lengths that
// differ, partial rotary dimensions, extra tensors). The result is validated. Errors name `source`
// (the file) and the key or tensor.
GgufModelConfig config_from_gguf(const io::GgufMetadata& metadata,
                                 std::span<const io::GgufTensor> tensors);
GgufModelConfig config_from_gguf(const io::GgufReader& reader);

// The architecture llama.cpp knows this model as: gpt2; qwen3 (qk_norm); qwen2 (q/k/v biases;
// needs H * D == C, as llama.cpp's qwen2 assumes); llama otherwise. Throws Error when none fits.
std::string gguf_architecture(const model::ModelConfig& config, bool has_qkv_bias);
// Sets general.architecture and every <arch>.* key llama.cpp reads for it (counts u32, floats
// f32, as its loader requires). The tokenizer keys are add_bpe_model_to_gguf's.
void add_config_to_gguf(io::GgufMetadata& metadata, const model::ModelConfig& config, bool has_qkv_bias);

// How one tensor's values differ between the two namings.
enum class GgufTransform {
    None,
    // GPT-2's Conv1D weights: HF [in, out], GGUF [out, in] (tandem order). Needs element access,
    // so quantized data is converted through f32.
    Transpose,
    // llama's q_proj/k_proj (weights and biases): within each head, HF's rows are [first half;
    // second half] of the rotated pairs, llama.cpp's interleave them (see gguf_model.cpp).
    // Permutes whole rows, so it applies to quantized rows as they are.
    RopePermute,
};

struct GgufTensorMapping {
    std::string hf_name;    // "model.layers.3.self_attn.q_proj.weight", "h.0.attn.c_attn.weight"
    std::string gguf_name;  // "blk.3.attn_q.weight", "blk.0.attn_qkv.weight"
    GgufTransform transform = GgufTransform::None;
    int64_t n_heads = 0;  // RopePermute: heads among the rows (H for q, Hkv for k)
};

// The GGUF name of an HF tensor of tandem's layout, and back. Throw Error naming the tensor and
// the architecture when it has no counterpart (or its layer index is >= n_layers).
GgufTensorMapping gguf_tensor_for_hf(std::string_view hf_name, const model::ModelConfig& config,
                                     std::string_view architecture);
GgufTensorMapping hf_tensor_for_gguf(std::string_view gguf_name, const model::ModelConfig& config,
                                     std::string_view architecture);

// Shapes are tandem's row-major order. Each returns the shape of what it wrote to dst (same
// number of values as src; dst and src must not overlap).
std::vector<int64_t> hf_to_gguf_values(const GgufTensorMapping& mapping, float* dst,
                                       const float* src, const std::vector<int64_t>& hf_shape);
std::vector<int64_t> gguf_to_hf_values(const GgufTensorMapping& mapping, float* dst,
                                       const float* src, const std::vector<int64_t>& gguf_shape);

// One tensor of a GGUF file as the f32 values of its HF counterpart (converted from its dtype,
// then un-permuted or transposed); `hf_shape` receives the HF shape.
std::vector<float> hf_values_from_gguf(const io::GgufTensor& tensor,
                                       const GgufTensorMapping& mapping,
                                       std::vector<int64_t>& hf_shape);

// A GGUF tensor that owns its bytes: info.data points into bytes (moving keeps it valid).
struct OwnedGgufTensor {
    io::GgufTensor info;
    std::vector<uint8_t> bytes;

    OwnedGgufTensor() = default;
    OwnedGgufTensor(OwnedGgufTensor&&) noexcept = default;
    OwnedGgufTensor& operator=(OwnedGgufTensor&&) noexcept = default;
    OwnedGgufTensor(const OwnedGgufTensor&) = delete;
    OwnedGgufTensor& operator=(const OwnedGgufTensor&) = delete;
};
// An HF tensor's f32 values [hf_shape] as the GGUF tensor mapping.gguf_name of `dtype` (F32,
// F16, BF16, Q8_0, Q4_0: transformed first, then converted). Throws Error naming the tensor
// when a block dtype does not divide its last GGUF dimension (llama.cpp's converter keeps such
// tensors, and 1-D ones, in F32 or F16: the caller chooses).
OwnedGgufTensor gguf_tensor_from_hf(const GgufTensorMapping& mapping, std::span<const float> values,
                                    const std::vector<int64_t>& hf_shape, DType dtype);

// The RoPE row permutation on n_rows rows of row_bytes each (any dtype: f32 rows, or rows of
// Q8_0/Q4_0 blocks), n_rows = n_heads * head_dim, head_dim even (asserted).
void rope_rows_to_gguf(void* dst, const void* src, int64_t n_heads, int64_t n_rows,
                       size_t row_bytes);
void rope_rows_from_gguf(void* dst, const void* src, int64_t n_heads, int64_t n_rows,
                         size_t row_bytes);

}  // namespace tandem::infer

// GGUF <-> ModelConfig and HF tensor names, after llama.cpp's convert_hf_to_gguf.py (conversion/
// llama.py, qwen.py, gpt2.py, base.py) and its loader (src/models/{llama,qwen2,qwen3,gpt2}.cpp,
// llama-model.cpp). What the converter does to values, per architecture:
//   llama  q_proj and k_proj (weight and bias) rows are permuted per head: the rows of one head,
//          [h*D, (h+1)*D), are viewed as [2, D/2] and transposed to [D/2, 2]. HF's RoPE rotates
//          x[i] with x[i + D/2] (halves); llama.cpp's "normal" RoPE rotates x[2i] with x[2i+1]
//          (adjacent pairs), so HF row h*D + j*D/2 + i lands on GGUF row h*D + 2i + j. k uses
//          Hkv heads. Everything else is copied.
//   qwen2, qwen3  nothing: llama.cpp runs them with NEOX RoPE, which rotates halves as HF does.
//   gpt2   the Conv1D weights (attn.c_attn, attn.c_proj, mlp.c_fc, mlp.c_proj), HF [in, out],
//          are transposed to [out, in] (GGUF ne = {in, out}), the layout of every other
//          matrix; c_attn's q|k|v columns become attn_qkv's rows in the same order. Biases,
//          norms, wte/wpe and an untied lm_head are copied.
// Keys (gguf-py constants.py, "{arch}." prefixed): block_count, context_length,
// embedding_length, feed_forward_length, attention.head_count, attention.head_count_kv (default
// head_count), attention.key_length / value_length (default embedding_length / head_count),
// rope.dimension_count (default key_length), rope.freq_base (default 10000),
// attention.layer_norm_rms_epsilon (llama, qwen2, qwen3) or attention.layer_norm_epsilon (gpt2),
// vocab_size (optional; llama.cpp counts tokenizer.ggml.tokens). Counts are u32 and floats f32
// in converted files; llama.cpp's loader insists on those types, so they are written so.
// Tied embeddings: llama.cpp uses token_embd.weight for the output when output.weight is absent.
#include "infer/gguf_model.h"

#include <charconv>
#include <cstring>
#include <unordered_map>

#include "core/error.h"
#include "core/quant.h"
#include "model/param_layout.h"

namespace tandem::infer {

// The model layer's names, used throughout the mapping.
using namespace tandem::model;

namespace {

using io::GgufMetadata;
using io::GgufTensor;

bool is_llama_family(std::string_view arch) {
    return arch == "llama" || arch == "qwen2" || arch == "qwen3";
}

void set_qkv_bias(ModelConfig& config, bool on) { config.qkv_bias = on; }

std::string key(std::string_view arch, std::string_view name) {
    return std::string(arch) + "." + std::string(name);
}

// A count llama.cpp reads as u32: positive and small enough.
int64_t count(const GgufMetadata& md, const std::string& k) {
    const int64_t v = md.get_int(k);
    if (v <= 0 || v > int64_t(UINT32_MAX))
        throw Error(md.source(), ": metadata key '", k, "' is ", v, " (it must be positive)");
    return v;
}

int64_t count_or(const GgufMetadata& md, const std::string& k, int64_t fallback) {
    return md.contains(k) ? count(md, k) : fallback;
}

const GgufTensor* find_tensor(std::span<const GgufTensor> tensors, std::string_view name) {
    for (const GgufTensor& t : tensors)
        if (t.name == name) return &t;
    return nullptr;
}

std::string shape_text(const std::vector<int64_t>& shape) {
    std::string out = "[";
    for (size_t i = 0; i < shape.size(); ++i) out += (i ? ", " : "") + std::to_string(shape[i]);
    return out + "]";
}

// ---- the name tables: HF suffix, GGUF suffix, transform. {} in the q/k rows marks RoPE. ----

struct NameRow {
    const char* hf;
    const char* gguf;
    GgufTransform transform;
};

constexpr GgufTransform kNone = GgufTransform::None;
constexpr GgufTransform kT = GgufTransform::Transpose;
constexpr GgufTransform kRope = GgufTransform::RopePermute;

// clang-format off
constexpr NameRow kLlamaGlobal[] = {
    {"model.embed_tokens.weight", "token_embd.weight", kNone},
    {"model.norm.weight", "output_norm.weight", kNone},
    {"lm_head.weight", "output.weight", kNone},
};
// Per block, after "model.layers.N." and "blk.N.". RopePermute applies only under "llama".
constexpr NameRow kLlamaBlock[] = {
    {"input_layernorm.weight",          "attn_norm.weight",   kNone},
    {"self_attn.q_proj.weight",         "attn_q.weight",      kRope},
    {"self_attn.k_proj.weight",         "attn_k.weight",      kRope},
    {"self_attn.v_proj.weight",         "attn_v.weight",      kNone},
    {"self_attn.q_proj.bias",           "attn_q.bias",        kRope},
    {"self_attn.k_proj.bias",           "attn_k.bias",        kRope},
    {"self_attn.v_proj.bias",           "attn_v.bias",        kNone},
    {"self_attn.q_norm.weight",         "attn_q_norm.weight", kNone},
    {"self_attn.k_norm.weight",         "attn_k_norm.weight", kNone},
    {"self_attn.o_proj.weight",         "attn_output.weight", kNone},
    {"post_attention_layernorm.weight", "ffn_norm.weight",    kNone},
    {"mlp.gate_proj.weight",            "ffn_gate.weight",    kNone},
    {"mlp.up_proj.weight",              "ffn_up.weight",      kNone},
    {"mlp.down_proj.weight",            "ffn_down.weight",    kNone},
};
constexpr NameRow kGpt2Global[] = {
    {"wte.weight", "token_embd.weight", kNone},
    {"wpe.weight", "position_embd.weight", kNone},
    {"ln_f.weight", "output_norm.weight", kNone},
    {"ln_f.bias", "output_norm.bias", kNone},
    {"lm_head.weight", "output.weight", kNone},
};
constexpr NameRow kGpt2Block[] = {
    {"ln_1.weight",        "attn_norm.weight",   kNone},
    {"ln_1.bias",          "attn_norm.bias",     kNone},
    {"attn.c_attn.weight", "attn_qkv.weight",    kT},
    {"attn.c_attn.bias",   "attn_qkv.bias",      kNone},
    {"attn.c_proj.weight", "attn_output.weight", kT},
    {"attn.c_proj.bias",   "attn_output.bias",   kNone},
    {"ln_2.weight",        "ffn_norm.weight",    kNone},
    {"ln_2.bias",          "ffn_norm.bias",      kNone},
    {"mlp.c_fc.weight",    "ffn_up.weight",      kT},
    {"mlp.c_fc.bias",      "ffn_up.bias",        kNone},
    {"mlp.c_proj.weight",  "ffn_down.weight",    kT},
    {"mlp.c_proj.bias",    "ffn_down.bias",      kNone},
};
// clang-format on

// "<prefix>N.<rest>" -> N and rest; false when `name` does not have that form.
bool split_block(std::string_view name, std::string_view prefix, int64_t& layer,
                 std::string_view& rest) {
    if (!name.starts_with(prefix)) return false;
    name.remove_prefix(prefix.size());
    const auto dot = name.find('.');
    if (dot == std::string_view::npos || dot == 0) return false;
    const auto [end, ec] = std::from_chars(name.data(), name.data() + dot, layer);
    if (ec != std::errc() || end != name.data() + dot || layer < 0) return false;
    rest = name.substr(dot + 1);
    return true;
}

// One direction of the mapping. from_hf: `name` is an HF name, else a GGUF name.
GgufTensorMapping map_name(std::string_view name, const ModelConfig& c, std::string_view arch,
                           bool from_hf) {
    const bool gpt2 = arch == "gpt2";
    if (!gpt2 && !is_llama_family(arch))
        throw Error("GGUF architecture '", arch,
                    "' is not one tandem maps (llama, qwen2, qwen3, gpt2)");
    const std::span<const NameRow> global =
        gpt2 ? std::span<const NameRow>(kGpt2Global) : std::span<const NameRow>(kLlamaGlobal);
    const std::span<const NameRow> block =
        gpt2 ? std::span<const NameRow>(kGpt2Block) : std::span<const NameRow>(kLlamaBlock);
    const std::string_view hf_prefix = gpt2 ? "h." : "model.layers.";
    const std::string_view gguf_prefix = "blk.";

    auto finish = [&](const NameRow& row, const std::string& hf, const std::string& gguf) {
        GgufTensorMapping m{hf, gguf, row.transform, 0};
        if (m.transform == kRope) {
            if (arch != "llama") {
                m.transform = kNone;  // NEOX RoPE in llama.cpp: HF's order as it is
            } else {
                const bool is_q = std::strstr(row.hf, "q_proj") != nullptr;
                m.n_heads = is_q ? c.n_heads : c.n_heads_kv;
            }
        }
        return m;
    };
    for (const NameRow& row : global)
        if (name == (from_hf ? row.hf : row.gguf)) return finish(row, row.hf, row.gguf);
    int64_t layer = 0;
    std::string_view rest;
    if (split_block(name, from_hf ? hf_prefix : gguf_prefix, layer, rest)) {
        if (layer >= c.n_layers)
            throw Error("tensor '", name, "' is in layer ", layer, " but the model has ",
                        c.n_layers, " layers");
        for (const NameRow& row : block) {
            if (rest != (from_hf ? row.hf : row.gguf)) continue;
            const std::string n = std::to_string(layer);
            return finish(row, std::string(hf_prefix) + n + "." + row.hf,
                          std::string(gguf_prefix) + n + "." + row.gguf);
        }
    }
    throw Error("tensor '", name, "' has no ", from_hf ? "GGUF" : "Hugging Face",
                " counterpart in tandem's ", arch, " layout");
}

// What the metadata claims, bounded by what the file holds before anything is sized from it: a
// hostile file could otherwise ask for a layout of 2^32 layers, or dimensions whose products
// overflow. Every layer needs its tensors in the file, and every tensor the layout implies must
// fit in the values the file's tensors hold (which do not overlap, so they fit in the file).
void check_sizes_against_file(const ModelConfig& c, std::string_view arch,
                              std::span<const GgufTensor> tensors) {
    const uint64_t per_layer = c.family == Family::Gpt2 ? 12 : 9;
    if (uint64_t(c.n_layers) > tensors.size() / per_layer)
        throw Error(arch, ".block_count is ", c.n_layers, " but the file holds only ",
                    tensors.size(), " tensors (", per_layer, " or more per layer)");
    uint64_t total = 0;
    for (const GgufTensor& t : tensors) total += uint64_t(t.numel());
    auto fits = [&](const char* what, int64_t a, int64_t b) {
        uint64_t n = 0;
        if (__builtin_mul_overflow(uint64_t(a), uint64_t(b), &n) || n > total)
            throw Error(what, " (", a, " x ", b, ") is more values than the file's tensors hold (",
                        total, ")");
        return int64_t(n);
    };
    const int64_t q = fits("attention.head_count x key_length", c.n_heads, c.head_dim);
    const int64_t kv = fits("attention.head_count_kv x key_length", c.n_heads_kv, c.head_dim);
    fits("the q projection", q, c.d_model);
    fits("the k projection", kv, c.d_model);
    fits("feed_forward_length x embedding_length", c.d_ffn, c.d_model);
    if (c.family == Family::Gpt2)
        fits("context_length x embedding_length", c.max_seq_len, c.d_model);
}

// Every GGUF tensor has a place in tandem's layout of `c`, with the shape that place has in
// GGUF order, and every place is filled: after this, the transforms may trust the shapes.
void check_tensors_against_layout(const ModelConfig& c, std::string_view arch, bool has_qkv_bias,
                                  std::span<const GgufTensor> tensors) {
    const ParamLayout layout = make_layout(c);
    std::unordered_map<std::string, std::vector<int64_t>> want;  // GGUF name -> GGUF shape
    for (const ParamEntry& e : layout.entries()) {
        const GgufTensorMapping m = map_name(e.name, c, arch, /*from_hf=*/true);
        std::vector<int64_t> shape(e.shape.dims.begin(), e.shape.dims.begin() + e.shape.ndim);
        if (m.transform == GgufTransform::Transpose) std::swap(shape[0], shape[1]);
        want.emplace(m.gguf_name, std::move(shape));
    }
    for (const GgufTensor& t : tensors) {
        const GgufTensorMapping m = map_name(t.name, c, arch, /*from_hf=*/false);
        auto it = want.find(t.name);
        if (it == want.end())
            throw Error("tensor '", t.name, "' (", m.hf_name, ") has no place in tandem's ", arch,
                        " layout for this configuration");
        if (t.shape != it->second)
            throw Error("tensor '", t.name, "' is ", shape_text(t.shape),
                        " but the metadata implies ", shape_text(it->second));
    }
    for (const auto& [name, shape] : want)
        if (!find_tensor(tensors, name))
            throw Error("has no tensor '", name, "', which tandem's ", arch, " layout needs");
}

}  // namespace

// ---- config ----

GgufModelConfig config_from_gguf(const GgufMetadata& md, std::span<const GgufTensor> tensors) {
    GgufModelConfig out;
    const std::string& arch = out.architecture = md.get_string("general.architecture");
    const std::string& src = md.source();
    if (arch != "gpt2" && !is_llama_family(arch))
        throw Error(src, ": general.architecture is '", arch,
                    "', which tandem does not read (it reads llama, qwen2, qwen3, gpt2)");
    ModelConfig& c = out.config;
    c.family = arch == "gpt2" ? Family::Gpt2 : Family::Llama;
    c.n_layers = count(md, key(arch, "block_count"));
    c.max_seq_len = count(md, key(arch, "context_length"));
    c.d_model = count(md, key(arch, "embedding_length"));
    c.d_ffn = count(md, key(arch, "feed_forward_length"));
    c.n_heads = count(md, key(arch, "attention.head_count"));
    c.n_heads_kv = count_or(md, key(arch, "attention.head_count_kv"), c.n_heads);
    c.head_dim = count_or(md, key(arch, "attention.key_length"), c.d_model / c.n_heads);
    const int64_t value_length = count_or(md, key(arch, "attention.value_length"), c.head_dim);
    if (value_length != c.head_dim)
        throw Error(src, ": ", key(arch, "attention.value_length"), " is ", value_length, " but ",
                    key(arch, "attention.key_length"), " is ", c.head_dim,
                    "; tandem's attention has one head size");
    if (md.get_int_or(key(arch, "expert_count"), 0) > 0)
        throw Error(src, ": ", key(arch, "expert_count"),
                    " is set: mixture-of-experts models are "
                    "not implemented in tandem");
    if (const std::string k = key(arch, "rope.scaling.type");
        md.contains(k) && md.get_string(k) != "none")
        throw Error(src, ": ", k, " is '", md.get_string(k),
                    "': RoPE scaling is not implemented in tandem");

    if (c.family == Family::Llama) {
        const int64_t rot = count_or(md, key(arch, "rope.dimension_count"), c.head_dim);
        if (rot != c.head_dim)
            throw Error(src, ": ", key(arch, "rope.dimension_count"), " is ", rot,
                        " but the head size is ", c.head_dim, "; tandem rotates whole heads");
        c.rope_theta = float(md.get_float_or(key(arch, "rope.freq_base"), 10000.0));
        c.norm_eps = float(md.get_float(key(arch, "attention.layer_norm_rms_epsilon")));
        c.qk_norm = arch == "qwen3";
    } else {
        if (c.n_heads_kv != c.n_heads)
            throw Error(src, ": gpt2.attention.head_count_kv is ", c.n_heads_kv,
                        " but GPT-2 has no grouped-query attention (head_count is ", c.n_heads,
                        ")");
        c.norm_eps = float(md.get_float(key(arch, "attention.layer_norm_epsilon")));
    }

    // The vocabulary: the token list is what llama.cpp counts.
    const GgufTensor* embd = find_tensor(tensors, "token_embd.weight");
    if (md.contains("tokenizer.ggml.tokens")) {
        c.vocab_size = int64_t(md.get_strings("tokenizer.ggml.tokens").size());
    } else if (md.contains(key(arch, "vocab_size"))) {
        c.vocab_size = count(md, key(arch, "vocab_size"));
    } else if (embd && embd->shape.size() == 2) {
        c.vocab_size = embd->shape[0];
    } else {
        throw Error(src, ": no vocabulary size: neither tokenizer.ggml.tokens, ",
                    key(arch, "vocab_size"), " nor a 2-D token_embd.weight");
    }
    if (!embd) throw Error(src, ": has no tensor 'token_embd.weight'");
    if (embd->shape != std::vector<int64_t>{c.vocab_size, c.d_model})
        throw Error(src, ": tensor 'token_embd.weight' is ", shape_text(embd->shape),
                    " but the metadata implies [", c.vocab_size, ", ", c.d_model,
                    "] (vocabulary x embedding_length)");
    c.tie_embeddings = find_tensor(tensors, "output.weight") == nullptr;
    out.has_qkv_bias = find_tensor(tensors, "blk.0.attn_q.bias") != nullptr;
    if (out.has_qkv_bias && c.family == Family::Gpt2) out.has_qkv_bias = false;  // gpt2's are fused
    set_qkv_bias(c, out.has_qkv_bias);

    try {
        check_sizes_against_file(c, arch, tensors);
        c.validate();
        if (c.qk_norm && out.has_qkv_bias)
            throw Error("q/k/v biases together with qk_norm are not a layout tandem has");
        check_tensors_against_layout(c, arch, out.has_qkv_bias, tensors);
    } catch (const Error& e) {
        throw Error(src, ": ", e.what());
    }
    return out;
}

GgufModelConfig config_from_gguf(const io::GgufReader& reader) {
    return config_from_gguf(reader.metadata(), reader.tensors());
}

std::string gguf_architecture(const ModelConfig& c, bool has_qkv_bias) {
    if (c.family == Family::Gpt2) return "gpt2";
    if (c.qk_norm && has_qkv_bias)
        throw Error(
            "GGUF export: a model with both qk_norm and q/k/v biases has no llama.cpp "
            "architecture (qwen3 has the first, qwen2 the second)");
    if (c.qk_norm) return "qwen3";
    if (has_qkv_bias) {
        if (c.n_heads * c.head_dim != c.d_model)
            throw Error("GGUF export: llama.cpp's qwen2 needs heads x head size (", c.n_heads,
                        " x ", c.head_dim, ") to equal the model width ", c.d_model);
        return "qwen2";
    }
    return "llama";
}

void add_config_to_gguf(GgufMetadata& md, const ModelConfig& c, bool has_qkv_bias) {
    const std::string arch = gguf_architecture(c, has_qkv_bias);
    auto u32 = [](int64_t v) { return uint32_t(v); };
    md.set("general.architecture", arch);
    md.set(key(arch, "vocab_size"), u32(c.vocab_size));
    md.set(key(arch, "block_count"), u32(c.n_layers));
    md.set(key(arch, "context_length"), u32(c.max_seq_len));
    md.set(key(arch, "embedding_length"), u32(c.d_model));
    md.set(key(arch, "feed_forward_length"), u32(c.d_ffn));
    md.set(key(arch, "attention.head_count"), u32(c.n_heads));
    if (c.family == Family::Gpt2) {
        md.set(key(arch, "attention.layer_norm_epsilon"), c.norm_eps);
        return;
    }
    md.set(key(arch, "attention.head_count_kv"), u32(c.n_heads_kv));
    md.set(key(arch, "attention.key_length"), u32(c.head_dim));
    md.set(key(arch, "attention.value_length"), u32(c.head_dim));
    md.set(key(arch, "rope.dimension_count"), u32(c.head_dim));
    md.set(key(arch, "rope.freq_base"), c.rope_theta);
    md.set(key(arch, "attention.layer_norm_rms_epsilon"), c.norm_eps);
}

// ---- names ----

GgufTensorMapping gguf_tensor_for_hf(std::string_view hf_name, const ModelConfig& c,
                                     std::string_view arch) {
    return map_name(hf_name, c, arch, /*from_hf=*/true);
}

GgufTensorMapping hf_tensor_for_gguf(std::string_view gguf_name, const ModelConfig& c,
                                     std::string_view arch) {
    return map_name(gguf_name, c, arch, /*from_hf=*/false);
}

// ---- values ----

namespace {

// Row r of the HF order goes to row rope_target(r) of the GGUF order.
int64_t rope_target(int64_t r, int64_t head_dim) {
    const int64_t half = head_dim / 2;
    const int64_t h = r / head_dim, j = (r % head_dim) / half, i = r % half;
    return h * head_dim + 2 * i + j;
}

void rope_rows(void* dst, const void* src, int64_t n_heads, int64_t n_rows, size_t row_bytes,
               bool to_gguf) {
    TANDEM_ASSERT(n_heads > 0 && n_rows % n_heads == 0 && (n_rows / n_heads) % 2 == 0, n_heads,
                  n_rows);
    const int64_t head_dim = n_rows / n_heads;
    auto* out = static_cast<unsigned char*>(dst);
    const auto* in = static_cast<const unsigned char*>(src);
    for (int64_t r = 0; r < n_rows; ++r) {
        const int64_t t = rope_target(r, head_dim);
        const int64_t from = to_gguf ? r : t, to = to_gguf ? t : r;
        std::memcpy(out + to * row_bytes, in + from * row_bytes, row_bytes);
    }
}

// Rows and row length of a tensor seen as a matrix: a vector is [n, 1] (one value per row).
void rows_cols(const std::vector<int64_t>& shape, int64_t& rows, int64_t& cols) {
    rows = shape.empty() ? 1 : shape[0];
    cols = 1;
    for (size_t d = 1; d < shape.size(); ++d) cols *= shape[d];
}

std::vector<int64_t> apply(const GgufTensorMapping& m, float* dst, const float* src,
                           const std::vector<int64_t>& shape, bool to_gguf) {
    int64_t rows = 0, cols = 0;
    rows_cols(shape, rows, cols);
    switch (m.transform) {
        case GgufTransform::None:
            std::memcpy(dst, src, size_t(rows * cols) * sizeof(float));
            return shape;
        case GgufTransform::Transpose:
            TANDEM_ASSERT(shape.size() == 2, m.hf_name, shape.size());
            for (int64_t r = 0; r < rows; ++r)
                for (int64_t k = 0; k < cols; ++k) dst[k * rows + r] = src[r * cols + k];
            return {shape[1], shape[0]};
        case GgufTransform::RopePermute:
            rope_rows(dst, src, m.n_heads, rows, size_t(cols) * sizeof(float), to_gguf);
            return shape;
    }
    TANDEM_ASSERT(false, "unknown transform");
}

}  // namespace

void rope_rows_to_gguf(void* dst, const void* src, int64_t n_heads, int64_t n_rows,
                       size_t row_bytes) {
    rope_rows(dst, src, n_heads, n_rows, row_bytes, true);
}

void rope_rows_from_gguf(void* dst, const void* src, int64_t n_heads, int64_t n_rows,
                         size_t row_bytes) {
    rope_rows(dst, src, n_heads, n_rows, row_bytes, false);
}

std::vector<int64_t> hf_to_gguf_values(const GgufTensorMapping& m, float* dst, const float* src,
                                       const std::vector<int64_t>& hf_shape) {
    return apply(m, dst, src, hf_shape, true);
}

std::vector<int64_t> gguf_to_hf_values(const GgufTensorMapping& m, float* dst, const float* src,
                                       const std::vector<int64_t>& gguf_shape) {
    return apply(m, dst, src, gguf_shape, false);
}

std::vector<float> hf_values_from_gguf(const io::GgufTensor& t, const GgufTensorMapping& m,
                                       std::vector<int64_t>& hf_shape) {
    const int64_t n = t.numel();
    std::vector<float> raw(static_cast<size_t>(n)), out(static_cast<size_t>(n));
    convert_values(raw.data(), DType::F32, t.data, t.dtype, n);
    hf_shape = gguf_to_hf_values(m, out.data(), raw.data(), t.shape);
    return out;
}

OwnedGgufTensor gguf_tensor_from_hf(const GgufTensorMapping& m, std::span<const float> values,
                                    const std::vector<int64_t>& hf_shape, DType dtype) {
    int64_t n = 1;
    for (int64_t d : hf_shape) n *= d;
    TANDEM_ASSERT(int64_t(values.size()) == n, m.hf_name, values.size(), n);
    std::vector<float> moved(static_cast<size_t>(n));
    OwnedGgufTensor out;
    out.info.name = m.gguf_name;
    out.info.dtype = dtype;
    out.info.shape = hf_to_gguf_values(m, moved.data(), values.data(), hf_shape);
    const int64_t block = dtype_block_values(dtype);
    if (block > 1 && (out.info.shape.empty() || out.info.shape.back() % block != 0))
        throw Error("GGUF export: tensor '", m.gguf_name, "' ", shape_text(out.info.shape),
                    " cannot be ", dtype_name(dtype), ": its last dimension is not a multiple of ",
                    block, " (keep it in f32 or f16)");
    out.bytes.resize(dtype_bytes(dtype, n));
    convert_values(out.bytes.data(), dtype, moved.data(), DType::F32, n);
    out.info.data = out.bytes.data();
    out.info.bytes = out.bytes.size();
    return out;
}

}  // namespace tandem::infer

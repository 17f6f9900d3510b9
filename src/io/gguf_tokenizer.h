// A GGUF file's tokenizer (the tokenizer.ggml.* keys and tokenizer.chat_template) <-> BpeModel,
// for byte-level BPE ("gpt2" in llama.cpp's words). Every check of those keys happens here and
// every error names the file; the keys themselves are read and written through io/gguf.h.
#pragma once

#include <string_view>

#include "io/bpe_tokenizer.h"
#include "io/gguf.h"

namespace tandem::io {

// llama.cpp's token types (llama_token_type / gguf-py TokenType).
// clang-format off
enum class GgufTokenType : int32_t {
    Normal = 1, Unknown = 2, Control = 3, UserDefined = 4, Unused = 5, Byte = 6,
};
// clang-format on

// Reads tokenizer.ggml.model (must be "gpt2"; "llama", "bert", ... are refused by name), tokens
// (spelled in GPT-2's byte characters), token_type (Normal -> vocabulary, Control -> special
// added token, UserDefined -> non-special added token, Unused -> a hole), merges ("a b"), pre
// (llama.cpp's pre-tokenizer name -> split pattern, see gguf_pre_tokenizer_pattern), the
// bos/eos/padding ids, add_bos_token/add_eos_token and tokenizer.chat_template. Checks what
// BpeModel promises (all 256 bytes present, merges of known tokens, ids in range). A "qwen2"
// pre-tokenizer turns on normalize_nfc (Qwen's tokenizer.json normalizes to NFC), a Llama 3 one
// ignore_merges and, unless the file says otherwise, add_bos (as llama.cpp does).
BpeModel bpe_model_from_gguf(const GgufMetadata& metadata);

// Sets the keys bpe_model_from_gguf reads, as llama.cpp's converter writes them: tokens of every
// id (added tokens in plain text, holes as "[PAD<id>]" of type Unused), token_type as i32,
// ids as u32 (left out when -1; llama.cpp then falls back to its defaults, id 11 for a gpt2
// tokenizer's bos/eos), add_bos/add_eos as bool, chat_template when not empty. Throws Error
// when model.pattern has no llama.cpp pre-tokenizer name. normalize_nfc has no GGUF key.
// The token list is padded with unused "[PAD<id>]" entries up to n_embedding_rows (the model's
// vocab_size, which a padded model such as Qwen3's makes larger than the tokenizer): llama.cpp
// refuses a model whose token_embd has more rows than the list has tokens.
void add_bpe_model_to_gguf(GgufMetadata& metadata, const BpeModel& model,
                           size_t n_embedding_rows = 0);

// The split pattern of a llama.cpp pre-tokenizer name: GPT-2's ("gpt-2", ...), Llama 3's
// ("llama-bpe", "llama3", ...) or Qwen2's ("qwen2", "deepseek-r1-qwen", ...). Throws Error
// naming the name and the accepted ones otherwise (prefixed by `source`).
std::string_view gguf_pre_tokenizer_pattern(std::string_view pre, std::string_view source);
// The name llama.cpp's converter writes for a pattern: "gpt-2", "llama-bpe" or "qwen2".
std::string_view gguf_pre_tokenizer_name(std::string_view pattern);

}  // namespace tandem::io

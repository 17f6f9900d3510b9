// Reads the files that describe a byte-level BPE tokenizer into a BpeModel and writes one back as
// a Hugging Face tokenizer.json. Every check of those files happens here, and every error names
// the file; bpe_tokenizer.cpp trusts what it is given.
#pragma once

#include <string>
#include <string_view>

#include "io/bpe_tokenizer.h"

namespace tandem::io {

// GPT-2's original pair: encoder.json (spelled token -> id) and vocab.bpe (one merge per line).
// "<|endoftext|>" becomes an added special token.
BpeModel load_gpt2_files(const std::string& encoder_json, const std::string& vocab_bpe);

// A Hugging Face tokenizer.json whose model is byte-level BPE (GPT-2, Qwen2/3, Llama 3 style):
// its normalizer (NFC) sets normalize_nfc, its post_processor (TemplateProcessing) bos_id/add_bos
// and eos_id/add_eos. parse_ takes the file's text; `path` only names it in errors.
BpeModel load_hf_tokenizer_json(const std::string& path);
BpeModel parse_hf_tokenizer_json(std::string_view text, const std::string& path);

// `path` is a tokenizer.json, or a directory holding tokenizer.json or encoder.json + vocab.bpe.
// A tokenizer_config.json in the same directory is applied on top (io/tokenizer_config.h).
BpeModel load_tokenizer_model(const std::string& path);
BpeTokenizer load_tokenizer(const std::string& path);

// The model as tokenizer.json text (model BPE, ByteLevel pre-tokenizer and decoder, the NFC
// normalizer when normalize_nfc, a TemplateProcessing post_processor when add_bos or add_eos),
// and the same written atomically to `path`.
std::string to_hf_tokenizer_json(const BpeModel& model);
void save_hf_tokenizer_json(const BpeModel& model, const std::string& path);

}  // namespace tandem::io

// Reads the files that describe a byte-level BPE tokenizer into a BpeModel and writes one back as
// a Hugging Face tokenizer.json. Every check of those files happens here, and every error names
// the file; bpe_tokenizer.cpp trusts what it is given.
#pragma once

#include <string>

#include "io/bpe_tokenizer.h"

namespace tandem::io {

// GPT-2's original pair: encoder.json (spelled token -> id) and vocab.bpe (one merge per line).
// "<|endoftext|>" becomes an added special token.
BpeModel load_gpt2_files(const std::string& encoder_json, const std::string& vocab_bpe);

// A Hugging Face tokenizer.json whose model is byte-level BPE (GPT-2, Qwen2/3, Llama 3 style).
// The NFC normalizer of Qwen's files is accepted but not applied (see docs/TOKENIZER.md).
BpeModel load_hf_tokenizer_json(const std::string& path);

// `path` is a tokenizer.json, or a directory holding tokenizer.json or encoder.json + vocab.bpe.
BpeModel load_tokenizer_model(const std::string& path);
BpeTokenizer load_tokenizer(const std::string& path);

// The model as tokenizer.json text (model BPE, ByteLevel pre-tokenizer and decoder), and the
// same written atomically to `path`.
std::string to_hf_tokenizer_json(const BpeModel& model);
void save_hf_tokenizer_json(const BpeModel& model, const std::string& path);

}  // namespace tandem::io

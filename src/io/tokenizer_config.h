// Hugging Face's tokenizer_config.json, read onto a BpeModel and written from one: the added and
// special tokens (added_tokens_decoder), bos/eos/pad tokens, add_bos_token/add_eos_token and the
// chat template. tokenizer_files.cpp reads tokenizer.json; this file only the config beside it.
#pragma once

#include <string>
#include <string_view>

#include "io/bpe_tokenizer.h"

namespace tandem::io {

// Applies the config to `model` (already loaded from tokenizer.json or GPT-2's files):
//   added_tokens_decoder  {"id": {content, special, normalized}}: tokens tokenizer.json lacks are
//                         added; one that contradicts it (same id, other content) is an error
//   bos_token, eos_token, pad_token   a string or {content}: sets bos_id, eos_id, pad_id
//   add_bos_token, add_eos_token      when present, override what tokenizer.json's post_processor
//                                     says (as transformers' Llama and Gemma tokenizers do)
//   chat_template         a string, or [{name, template}] of which "default" is taken
// Every error names `path` and the field. parse_ takes the file's text.
void load_tokenizer_config(BpeModel& model, const std::string& path);
void parse_tokenizer_config(BpeModel& model, std::string_view text, const std::string& path);

// The config as JSON text, with the fields above (tokenizer_class PreTrainedTokenizerFast), and
// the same written atomically to `path`; loading it back gives the same fields.
std::string to_tokenizer_config_json(const BpeModel& model);
void save_tokenizer_config_json(const BpeModel& model, const std::string& path);

}  // namespace tandem::io

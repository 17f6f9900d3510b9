// Unicode NFC (canonical composition), the normalizer of Qwen's tokenizer.json, applied as Hugging
// Face's tokenizers apply it, through utf8proc. Text that is already NFC (nearly all real text) is
// recognised by a quick check and passed through without a copy. Knows nothing of tokens.
#pragma once

#include <string>
#include <string_view>

namespace tandem::io {

// True when NFC certainly leaves `text` unchanged; false means "normalize to find out". Passes
// every code point below U+0300 and every other starter that NFC leaves as it is and that never
// composes with the character before it (CJK, Hangul syllables, precomposed letters such as ệ,
// emoji). Bytes that are not valid UTF-8 pass.
bool is_nfc_quick(std::string_view text);

// The same test for one code point (a code point that passes may still be changed by NFC when a
// later one fails, e.g. 'e' before U+0301; exposed for the exhaustive test of the table it uses).
bool is_nfc_quick_code_point(char32_t c);

// NFC of `text`. Bytes that are not valid UTF-8 are copied unchanged and nothing composes across
// them (Hugging Face only ever sees valid UTF-8, so this only has to be consistent and lossless).
// Only the stretches around code points that fail the quick check go through utf8proc.
std::string to_nfc(std::string_view text);

// `text` itself when it passes the quick check, else its NFC, stored in `buffer`.
std::string_view nfc_view(std::string_view text, std::string& buffer);

}  // namespace tandem::io

// A byte-level tokenizer with ChatML's two special tokens and a plain ChatML chat template, for
// the fine-tuning tests (tests/train/sft_*_test.cpp, tests/cli/sft_cli_test.cpp).
#pragma once

#include "common/hf_dir_util.h"
#include "io/bpe_tokenizer.h"

namespace tandem::testing {

inline constexpr int32_t kImStart = 257, kImEnd = 258;

// Bytes are ids 0-255, <|endoftext|> 256, <|im_start|> 257, <|im_end|> 258 (also the EOS).
inline io::BpeModel chatml_tokenizer() {
    io::BpeModel m = byte_tokenizer();
    m.added.push_back({"<|im_start|>", kImStart, true});
    m.added.push_back({"<|im_end|>", kImEnd, true});
    m.tokens.resize(259);
    m.eos_id = kImEnd;
    m.chat_template =
        "{% for m in messages %}{{'<|im_start|>' + m['role'] + '\\n' + m['content'] + "
        "'<|im_end|>\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' "
        "}}"
        "{% endif %}";
    return m;
}

}  // namespace tandem::testing

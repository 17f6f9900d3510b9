// Text in, text out: encodes a prompt, prefills the decoder, samples token after token and
// streams the text as it becomes final (through TextStream: UTF-8 sequences and possible stop
// strings are held back until they are decided).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "infer/decoder.h"
#include "infer/sampler.h"
#include "io/bpe_tokenizer.h"

namespace tandem::infer {

struct GenerateOptions {
    std::string prompt;
    int64_t max_tokens = 128;
    SamplingParams sampling;
    std::vector<std::string> stop;  // generation ends before the first of these
    bool stop_at_eot = true;        // the end-of-text token ends generation, and so do:
    std::vector<int32_t> stop_ids;  // the model's own (generation_config.json's eos_token_id)
    bool echo_prompt = false;       // stream the prompt first, once it is known to fit
};

struct GenerateResult {
    std::string text;  // the generated text, without the prompt and the stop string
    int64_t n_prompt_tokens = 0;
    int64_t n_tokens = 0;  // generated
    std::string finish_reason;  // "length", "stop", "eot", "context"
};

// Throws Error when the prompt does not fit the context, a stop string is empty or the sampling
// options are out of range (SamplingParams::validate).
GenerateResult generate(Decoder& decoder, const io::BpeTokenizer& tokenizer,
                        const GenerateOptions& options,
                        const std::function<void(std::string_view)>& on_text = {});

}  // namespace tandem::infer

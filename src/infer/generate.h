// Text in, text out over the engine: prompts encoded as Hugging Face's tokenizer(text) does, the
// model's own stop tokens added to the caller's, and the engine's events gathered per prompt
// and sample. One prompt can be streamed as its text becomes final; many run batched.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "infer/engine.h"
#include "io/bpe_tokenizer.h"

namespace tandem::infer {

struct GenerateOptions {
    std::string prompt;  // generate(): the prompt; generate_batch() takes its prompts apart
    int64_t max_tokens = 128;
    SamplingParams sampling;
    std::vector<std::string> stop;  // generation ends before the first of these
    bool stop_at_eot = true;        // the end-of-text token ends generation, and so do:
    std::vector<int32_t> stop_ids;  // the model's own (generation_config.json's eos_token_id)
    bool echo_prompt = false;       // stream the prompt first, once it is known to fit
    int64_t n = 1;                  // samples per prompt
};

struct GenerateResult {
    std::string text;  // the generated text, without the prompt and the stop string
    int64_t n_prompt_tokens = 0;
    int64_t n_tokens = 0;       // generated
    std::string finish_reason;  // "stop", "length", "context" (finish_reason_name)
};

// The ids of `prompt` as HF's tokenizer(text) gives them (the BOS the model's files ask for);
// an empty prompt starts from the end-of-text token, the boundary every training document
// follows.
std::vector<int32_t> encode_prompt(const io::BpeTokenizer& tokenizer, std::string_view prompt);

// The engine's request for `prompt` under `options`: the stop ids are the caller's, the
// tokenizer's EOS and its end-of-text token, when options.stop_at_eot.
Request make_request(const io::BpeTokenizer& tokenizer, const GenerateOptions& options,
                     std::vector<int32_t> prompt);

// One prompt, one sample (options.n must be 1), its text passed to on_text as it becomes final.
// The engine must have no other work. Throws Error for a prompt that does not fit the context.
GenerateResult generate(Engine& engine, const io::BpeTokenizer& tokenizer,
                        const GenerateOptions& options,
                        const std::function<void(std::string_view)>& on_text = {});

struct BatchProgress {
    int64_t n_done = 0;   // sequences finished
    int64_t n_total = 0;  // prompts * n
    int64_t n_tokens = 0;  // generated so far
};

// Every prompt with options.n samples each, all submitted at once and run batched: results
// [prompt][sample]. on_progress is called after every step. Throws Error naming the prompt (by
// its index) that cannot run, before anything runs.
std::vector<std::vector<GenerateResult>> generate_batch(
    Engine& engine, const io::BpeTokenizer& tokenizer, std::span<const std::string> prompts,
    const GenerateOptions& options,
    const std::function<void(const BatchProgress&)>& on_progress = {});

}  // namespace tandem::infer

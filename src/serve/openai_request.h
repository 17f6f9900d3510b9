// The bodies of POST /v1/completions and POST /v1/chat/completions, parsed and checked into plain
// structs with infer::SamplingParams inside. Every problem is an ApiError (400, or 413 for a body
// over kMaxBodyBytes) whose param names the field and whose message says what was expected.
// Tokenizing, the chat template and the context check after tokenizing are left to the caller.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "infer/sampler.h"
#include "io/chat_message.h"
#include "serve/api_error.h"

namespace tandem::serve {

// Bodies longer than this are refused with 413 before parsing. A 32k-token prompt sent as token
// ids is about 230 kB of JSON; 4 MiB leaves room for long chats without letting one client make
// the server hold tens of megabytes.
inline constexpr size_t kMaxBodyBytes = size_t(4) << 20;
// Deeper nesting is refused while parsing: no request needs more than about 4 levels.
inline constexpr int kMaxJsonDepth = 16;
// The most stop strings a request may give (OpenAI's limit), and the longest one (tandem's: the
// text stream checks held-back text against every stop string after each token, so one
// megabyte-long stop string would make a request cost the server far more than its tokens).
inline constexpr size_t kMaxStopStrings = 4;
inline constexpr size_t kMaxStopBytes = 256;

// What the server allows; the parser checks against it.
struct RequestLimits {
    int64_t max_choices = 16;  // n, times the number of prompts of a completion
    int64_t vocab_size = 0;    // > 0: bounds token ids in prompts and logit_bias; 0: unchecked
};

// The options both endpoints share.
struct GenerationOptions {
    std::string model;           // "" when the request names none (llama.cpp's server allows it)
    int64_t n = 1;               // completions per prompt
    bool stream = false;         // server-sent events
    bool include_usage = false;  // stream_options.include_usage: a last chunk with usage
    // max_tokens or max_completion_tokens. Absent: until the context is full (chat); completions
    // default to 16, OpenAI's documented default.
    std::optional<int64_t> max_tokens;
    std::string max_tokens_param = "max_tokens";  // the field it came from, for errors
    std::vector<std::string> stop;                // at most kMaxStopStrings, none empty
    bool has_seed = false;                        // false: the server picks sampling.seed
    bool ignore_eos = false;  // llama.cpp's extra: the end-of-text tokens do not stop a sequence
    // temperature, top_p, top_k, min_p, repeat_penalty, presence/frequency_penalty, logit_bias,
    // seed, logprobs and top_logprobs. Completions' logprobs=k becomes logprobs=true,
    // top_logprobs=k.
    infer::SamplingParams sampling;
};

// A completion prompt: text to tokenize, or token ids given by the client.
struct Prompt {
    bool is_tokens = false;
    std::string text;
    std::vector<int32_t> tokens;
};

struct CompletionRequest {
    GenerationOptions options;
    std::vector<Prompt> prompts;  // one or more; choices are numbered prompt * n + sample
};

// A message's text parts, when content is an array, are joined without separator.
using io::ChatMessage;
using io::Role;

struct ChatRequest {
    GenerationOptions options;
    std::vector<ChatMessage> messages;  // at least one
    // chat_template_kwargs.enable_thinking (vLLM's and llama.cpp's extension; Qwen3 reads it).
    bool enable_thinking = true;
};

// Parse and check a body (UTF-8 JSON). Throws ApiError: 413 over kMaxBodyBytes, else 400.
// A field this server does not know is refused with 400, as OpenAI refuses it (OpenAI's `user`,
// `metadata` and `store` are accepted and ignored); fields it knows but whose value it cannot honour (echo,
// best_of > 1, suffix, tools, a response_format other than text, images) are refused with 400
// rather than silently ignored, because the reply would not be what the client asked for.
CompletionRequest parse_completion_request(std::string_view body, const RequestLimits& limits);
ChatRequest parse_chat_request(std::string_view body, const RequestLimits& limits);

// After tokenizing: how many tokens to generate at most. Throws a 400 naming `prompt_param`
// ("prompt", "messages") when the prompt is empty or leaves no room in the context, and naming
// options.max_tokens_param when prompt + max_tokens exceed it. Absent max_tokens: the room left.
int64_t fit_to_context(int64_t n_prompt_tokens, const GenerationOptions& options, int64_t n_ctx,
                       std::string_view prompt_param);

}  // namespace tandem::serve

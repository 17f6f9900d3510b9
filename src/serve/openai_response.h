// The JSON the OpenAI-compatible API answers with: completions and chat completions, whole or as
// server-sent events (one `data: {...}\n\n` per chunk, then `data: [DONE]\n\n`), log-probabilities
// in each endpoint's shape, error objects and the model list. Plain functions of plain structs:
// the server fills them from the engine's events and writes the strings.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "serve/api_error.h"

namespace tandem::serve {

// One generated token's log-probabilities. `token` holds its bytes, which may be part of a UTF-8
// character: JSON strings get U+FFFD for such bytes, chat's `bytes` arrays the exact ones.
struct TokenLogprobs {
    std::string token;
    float logprob = 0;
    std::vector<std::pair<std::string, float>> top;  // most likely first
};

enum class FinishReason { Stop, Length };
std::string_view finish_reason_name(FinishReason reason);  // "stop", "length"

struct Usage {
    int64_t prompt_tokens = 0;
    int64_t completion_tokens = 0;  // over all choices
};

// What every object of one response repeats.
struct ResponseMeta {
    std::string id;       // response_id(...)
    int64_t created = 0;  // Unix seconds, the same in every chunk
    std::string model;    // the served model's name
};

// A finished choice.
struct Choice {
    int64_t index = 0;
    std::string text;
    FinishReason finish_reason = FinishReason::Stop;
    std::optional<std::vector<TokenLogprobs>> logprobs;  // nullopt: "logprobs": null
};

// One streamed piece of a choice: new text, its tokens' log-probabilities, and the finish reason
// in the choice's last chunk.
struct ChoiceDelta {
    int64_t index = 0;
    std::string text;
    std::optional<FinishReason> finish_reason;
    std::optional<std::vector<TokenLogprobs>> logprobs;
    bool with_role = false;  // chat: the choice's first chunk, whose delta names the role
};

// "chatcmpl-" / "cmpl-" and 24 hex digits mixed from `serial`: unique per server run.
std::string response_id(std::string_view prefix, uint64_t serial);

// Whole responses (stream: false).
std::string completion_json(const ResponseMeta& meta, std::span<const Choice> choices,
                            const Usage& usage);
std::string chat_completion_json(const ResponseMeta& meta, std::span<const Choice> choices,
                                 const Usage& usage);

// Server-sent events (stream: true). With include_usage, every chunk carries "usage": null and
// usage_event sends the last one: empty choices and the usage. done_event ends the stream.
std::string completion_chunk_event(const ResponseMeta& meta, const ChoiceDelta& delta,
                                   bool include_usage);
std::string chat_chunk_event(const ResponseMeta& meta, const ChoiceDelta& delta,
                             bool include_usage);
std::string completion_usage_event(const ResponseMeta& meta, const Usage& usage);
std::string chat_usage_event(const ResponseMeta& meta, const Usage& usage);
std::string done_event();  // "data: [DONE]\n\n"

// {"error": {"message", "type", "param", "code"}}; "" param or code are null.
std::string error_json(const ApiError& error);
// The same as an event, for a failure after a stream's headers went out (OpenAI's clients raise
// it as an APIError).
std::string error_event(const ApiError& error);

// GET /v1/models: {"object": "list", "data": [{"id", "object": "model", "created", "owned_by"}]}.
struct ModelInfo {
    std::string id;
    int64_t created = 0;
    std::string owned_by = "tandem";
};
std::string models_json(std::span<const ModelInfo> models);

}  // namespace tandem::serve

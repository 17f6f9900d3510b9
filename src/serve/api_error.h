// The errors the OpenAI-compatible API answers with: an HTTP status and the fields of OpenAI's
// error object ({"error": {"message", "type", "param", "code"}}). Parsers throw them; the server
// renders them with openai_response.h's error_json and carries on with the next request.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>

#include "core/error.h"

namespace tandem::serve {

class ApiError : public Error {
   public:
    ApiError(int status, std::string type, std::string param, std::string code,
             const std::string& message)
        : Error(message),
          status(status),
          type(std::move(type)),
          param(std::move(param)),
          code(std::move(code)) {}

    int status;         // 400, 401, 404, 413, 429, 500, ...
    std::string type;   // "invalid_request_error", ...
    std::string param;  // the request field at fault ("messages[2].role"); "" renders as null
    std::string code;   // a machine-readable reason ("model_not_found"); "" renders as null
};

// 400: a field of the request is missing, of the wrong type, or out of range. `param` names it.
template <typename... Parts>
ApiError invalid_request(std::string param, const Parts&... parts) {
    return ApiError(400, "invalid_request_error", std::move(param), "", Error::concat(parts...));
}

// 401: no key, or the wrong one, while the server has one.
ApiError invalid_api_key();
// 404: the request names a model this server does not serve.
ApiError model_not_found(std::string_view model);
// 404: no such route ("POST /v1/embeddings").
ApiError unknown_url(std::string_view method, std::string_view path);
// 413: the body is longer than `limit` bytes.
ApiError body_too_large(uint64_t size, uint64_t limit);
// 429: the queue is full; the server adds the Retry-After header.
ApiError queue_full(int64_t retry_after_seconds);
// 499 (nginx's "client closed request"): the client closed its connection before its answer
// was ready. Nobody reads the body; the log line and /metrics count the request under it.
ApiError client_closed_request();
// 500: a failure of the server itself while answering (the message says which).
ApiError server_error(std::string_view message);

}  // namespace tandem::serve

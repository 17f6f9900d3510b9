// The non-400 errors of api_error.h, with OpenAI's wording where it has one, so that clients
// which match on `code` behave as they do against OpenAI.
#include "serve/api_error.h"

namespace tandem::serve {

ApiError invalid_api_key() {
    return ApiError(401, "invalid_request_error", "", "invalid_api_key",
                    "Missing or incorrect API key: send it as 'Authorization: Bearer KEY' "
                    "(the key given to tandem serve by --api-key or TANDEM_API_KEY)");
}

ApiError model_not_found(std::string_view model) {
    return ApiError(404, "invalid_request_error", "model", "model_not_found",
                    Error::concat("The model '", model,
                                  "' does not exist on this server (GET /v1/models lists the "
                                  "one it serves)"));
}

ApiError unknown_url(std::string_view method, std::string_view path) {
    return ApiError(404, "invalid_request_error", "", "unknown_url",
                    Error::concat("Invalid URL (", method, " ", path,
                                  "): this server answers GET /v1/models, POST /v1/completions, "
                                  "POST /v1/chat/completions, GET /health and GET /metrics"));
}

ApiError body_too_large(uint64_t size, uint64_t limit) {
    return ApiError(413, "invalid_request_error", "", "request_too_large",
                    Error::concat("The request body is ", size,
                                  " bytes; this server accepts at "
                                  "most ",
                                  limit));
}

ApiError queue_full(int64_t retry_after_seconds) {
    return ApiError(
        429, "server_overloaded", "", "queue_full",
        Error::concat("The server's queue is full; retry after ", retry_after_seconds, " s"));
}

ApiError client_closed_request() {
    return ApiError(499, "invalid_request_error", "", "client_closed_request",
                    "The client closed its connection before the answer was ready: its "
                    "sequences were cancelled");
}

ApiError server_error(std::string_view message) {
    return ApiError(500, "server_error", "", "", std::string(message));
}

}  // namespace tandem::serve

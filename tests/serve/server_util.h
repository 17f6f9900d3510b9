// The serve tests' fixtures: a tiny Hugging Face model directory whose tokenizer knows ChatML
// (bytes, <|endoftext|>, <|im_start|>, <|im_end|>, and Qwen2.5's chat template in
// tokenizer_config.json), a server started in-process on a free port over it, and HTTP helpers:
// httplib's client for well-formed requests and a raw socket for what a client library refuses
// to send.
#pragma once

#include <functional>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "serve/served_model.h"
#include "serve/server.h"

namespace tandem::testing {

// Writes the model under `dir` (a 2-layer qwen3-tiny shape, random weights, context 256 unless
// `n_positions` says more: a reply long enough to outlast what a test does meanwhile).
void write_tiny_chat_model(const std::string& dir, int64_t n_positions = 256);

// Log lines as the server writes them, from any thread.
struct LogLines {
    void add(const std::string& line);
    std::vector<std::string> lines() const;

   private:
    mutable std::mutex mutex_;
    std::vector<std::string> lines_;
};

// A server over the tiny model, on 127.0.0.1 and a free port, log lines kept in `log`.
struct TestServer {
    std::unique_ptr<serve::ServedModel> model;
    std::unique_ptr<serve::Server> server;
    std::shared_ptr<LogLines> log;
    int port = 0;

    ~TestServer();
};
// `dir` holds the model (write_tiny_chat_model); `options` adjusts the server's (port and log
// are set here). load: false leaves the model out, so that the server answers "loading".
std::unique_ptr<TestServer> start_test_server(const std::string& dir,
                                              serve::ServerOptions options = {},
                                              serve::ServedModelOptions model_options = {},
                                              bool load = true);

// An HTTP exchange over a raw socket: `request` is sent as given (its first `n_fast` bytes at
// once, then a byte per `delay_ms` when that is > 0), then everything is read until the server
// closes, `timeout_s` passes, or what was received holds `stop_at` (when not empty): the socket is
// then closed at once.
struct RawReply {
    int status = 0;      // 0: no status line came back
    std::string head;    // status line and headers
    std::string body;    // as received (chunked encoding left in place)
    double seconds = 0;  // from the first byte sent to the connection's end
};
RawReply raw_http(int port, const std::string& request, double timeout_s = 10, int delay_ms = 0,
                  const std::string& stop_at = "", size_t n_fast = 0);
// Connects to 127.0.0.1:port and sends `request` whole; returns the socket, which the caller
// closes (a client that hangs up while it waits), or -1 when the connection failed.
int send_request(int port, const std::string& request);
// "POST path HTTP/1.1" with Host, Content-Type: application/json, Content-Length and
// Connection: close around `body`.
std::string post_request(const std::string& path, const std::string& body,
                         const std::string& extra_headers = "");

// POSTs a JSON `body` to `path` and reads the answer as it streams, calling `on_chunk` with what
// came before each piece (empty before the first); returns all of it. A failed exchange fails
// the test.
std::string post_streamed(int port, const std::string& path, const std::string& body,
                          const std::function<void(const std::string& before)>& on_chunk,
                          const std::string& api_key = "");

// The data: lines of a server-sent event stream, [DONE] included as the string "[DONE]".
std::vector<std::string> sse_data(const std::string& body);

}  // namespace tandem::testing

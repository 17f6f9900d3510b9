// The HTTP side of `tandem serve`: cpp-httplib's server with the OpenAI-compatible routes
// (GET /v1/models, POST /v1/completions and /v1/chat/completions, streamed or not), GET /health,
// GET /metrics and the chat page at /, the API key, body and queue limits, socket timeouts, one
// log line per request, and a shutdown that drains running requests. It listens before the model
// is loaded (/health says "loading" meanwhile); the engine thread is the EngineLoop's.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>

#include "serve/metrics.h"
#include "serve/openai_request.h"

namespace httplib {
class Server;
struct Request;
struct Response;
}  // namespace httplib

namespace tandem::serve {

class ServedModel;
class EngineLoop;

struct ServerOptions {
    std::string host = "127.0.0.1";   // loopback unless told otherwise
    int port = 8080;                  // 0: a free port, which port() then gives
    std::string api_key;              // "": none; else every route but /health needs it
    size_t max_body_bytes = kMaxBodyBytes;  // larger bodies get 413 (at most kMaxBodyBytes)
    int64_t max_running = 64;         // sequences the engine decodes at once (--max-seqs)
    int64_t max_waiting = 64;         // sequences queued beyond those; more get 429
    int64_t max_choices = 16;         // n times the prompts of one request
    double read_timeout_s = 10;       // a socket read that waits longer ends the connection
    double write_timeout_s = 10;      // likewise for a write (a client that stops reading)
    double keep_alive_timeout_s = 5;  // an idle kept-alive connection is closed after this
    int64_t n_threads = 0;            // connections served at once; 0: max_running + max_waiting + 8
    // Receives one line per request (no newline); default: stderr, prefixed "tandem serve: ".
    std::function<void(const std::string&)> log;
};

class Server {
   public:
    explicit Server(ServerOptions options);
    ~Server();  // shutdown(0) if still running
    Server(const Server&) = delete;
    Server& operator=(const Server&) = delete;

    // Binds host:port and answers on threads of its own from now on; returns the port. Throws
    // Error naming the address when it cannot be bound (in use, not local, ...).
    int start();
    // The model is loaded: the generation routes answer from now on. The model must outlive the
    // server (or its shutdown).
    void attach(ServedModel& model);
    // Refuses new generation requests (503), lets running ones finish for up to `drain`, cancels
    // what still runs after that, then closes the listening socket and returns once every
    // connection is closed and the engine is idle.
    void shutdown(std::chrono::milliseconds drain);

    int port() const { return port_; }
    const ServerOptions& options() const { return options_; }
    ServerMetrics& metrics() { return metrics_; }

   private:
    void install_routes();
    void handle_generation(const httplib::Request& req, httplib::Response& res, bool is_chat);
    ServedModel& ready_model() const;  // throws ApiError 503 while loading or shutting down
    // Counts a generation request in flight until the token is dropped; 503 while draining.
    std::shared_ptr<void> enter_request();
    bool authorized(const httplib::Request& req) const;
    void log_request(const httplib::Request& req, const httplib::Response& res);

    ServerOptions options_;
    ServerMetrics metrics_;
    std::unique_ptr<httplib::Server> http_;
    std::thread listener_;
    int port_ = 0;

    std::atomic<ServedModel*> model_{nullptr};
    std::unique_ptr<EngineLoop> loop_;
    std::atomic<bool> draining_{false};
    int64_t created_ = 0;  // when the model was attached: /v1/models' "created"
    std::atomic<uint64_t> serial_{0};  // response ids and default seeds
    uint64_t seed_base_ = 0;           // differs per server run: unseeded requests differ too

    std::mutex stop_mutex_;  // guards n_in_flight_ and shut_down_
    std::condition_variable stopped_cv_;
    int64_t n_in_flight_ = 0;  // generation requests admitted and not yet answered in full
    bool shut_down_ = false;
};

}  // namespace tandem::serve

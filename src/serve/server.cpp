// The routes and the lifecycle of `tandem serve` over cpp-httplib. Each connection is served by a
// pool thread, which runs its requests' handlers, writes streamed answers from the content
// provider and calls the logger last, so a per-thread record carries what the log line needs
// from the start of a request to its end. Every error body is an OpenAI error object: handlers
// write their own, httplib's own refusals (404 no route, 413, malformed HTTP) are rewritten by
// the error handler.
#include "serve/server.h"

#include <httplib.h>

#include <charconv>
#include <csignal>
#include <cstdio>
#include <ctime>
#include <random>

#include "core/error.h"
#include "serve/api_error.h"
#include "serve/chat_page.h"
#include "serve/connection_probe.h"
#include "serve/engine_loop.h"
#include "serve/generation_job.h"
#include "serve/openai_response.h"
#include "serve/served_model.h"

namespace tandem::serve {

namespace {

using Clock = std::chrono::steady_clock;
using httplib::Request;
using httplib::Response;
using HandlerResponse = httplib::Server::HandlerResponse;

// What the log line of the request this thread is answering needs.
struct RequestRecord {
    bool has_start = false;
    Clock::time_point start;
    std::shared_ptr<GenerationJob> job;
};
thread_local RequestRecord t_record;

constexpr int64_t kRetryAfterSeconds = 1;

void write_error(Response& res, const ApiError& e) {
    res.status = e.status;
    res.set_content(error_json(e), "application/json");
    if (e.status == 429) res.set_header("Retry-After", std::to_string(kRetryAfterSeconds));
    if (e.status == 401) res.set_header("WWW-Authenticate", "Bearer");
}

// Runs a handler, turning what it throws into the error object: ApiError as it is, a tandem
// Error (a request the tokenizer or the engine refused) as 400, anything else as 500.
template <typename F>
void answer(Response& res, F&& handler) {
    try {
        handler();
    } catch (const ApiError& e) {
        write_error(res, e);
    } catch (const Error& e) {
        write_error(res, invalid_request("", e.what()));
    } catch (const std::exception& e) {
        write_error(res, server_error(e.what()));
    }
}

// The metrics label of a path: the routes by name, everything else as one series, so that a
// scan of random paths cannot grow the registry without bound.
std::string_view endpoint_label(const std::string& path) {
    for (std::string_view known :
         {"/v1/models", "/v1/completions", "/v1/chat/completions", "/health", "/metrics", "/"})
        if (path == known) return known;
    return "other";
}

// Compared in time independent of where the strings differ.
bool same_secret(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    unsigned char diff = 0;
    for (size_t i = 0; i < a.size(); ++i) diff |= uint8_t(a[i] ^ b[i]);
    return diff == 0;
}

uint64_t content_length(const Request& req) {
    const std::string value = req.get_header_value("Content-Length");
    uint64_t n = 0;
    std::from_chars(value.data(), value.data() + value.size(), n);
    return n;
}

// Whether the request's client has closed its connection, for GenerationJob::watch_client. The
// socket is looked for at once, as the request arrives: a connection its client has reset has no
// peer address left to be found by.
std::function<bool()> client_gone_check(const Request& req) {
    return [probe = ConnectionProbe(ConnectionAddress{.local_host = req.local_addr,
                                                      .local_port = req.local_port,
                                                      .remote_host = req.remote_addr,
                                                      .remote_port = req.remote_port})] {
        return probe.is_closed();
    };
}

void set_timeout(httplib::Server& http, double seconds,
                 httplib::Server& (httplib::Server::*setter)(time_t, time_t)) {
    const auto usec = static_cast<int64_t>(seconds * 1e6);
    (http.*setter)(time_t(usec / 1000000), time_t(usec % 1000000));
}

}  // namespace

Server::Server(ServerOptions options)
    : options_(std::move(options)), http_(std::make_unique<httplib::Server>()) {
    if (!options_.log)
        options_.log = [](const std::string& line) {
            std::fprintf(stderr, "tandem serve: %s\n", line.c_str());
        };
    seed_base_ = std::random_device{}();
    seed_base_ = (seed_base_ << 32) ^ uint64_t(std::time(nullptr));
    install_routes();
}

Server::~Server() {
    if (listener_.joinable()) shutdown(std::chrono::milliseconds(0));
}

void Server::install_routes() {
    httplib::Server& http = *http_;
    const size_t n_threads = options_.n_threads > 0
                                 ? size_t(options_.n_threads)
                                 : size_t(options_.max_running + options_.max_waiting + 8);
    http.new_task_queue = [n_threads] { return new httplib::ThreadPool(n_threads); };
    http.set_payload_max_length(options_.max_body_bytes);
    set_timeout(http, options_.read_timeout_s, &httplib::Server::set_read_timeout);
    set_timeout(http, options_.write_timeout_s, &httplib::Server::set_write_timeout);
    // SO_REUSEADDR only: httplib's default adds SO_REUSEPORT, which lets a second server bind a
    // port already served and silently take half its connections.
    http.set_socket_options([](socket_t sock) {
        int yes = 1;
        ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
    });
    http.set_keep_alive_timeout(std::max<time_t>(1, time_t(options_.keep_alive_timeout_s)));

    http.set_pre_routing_handler([this](const Request& req, Response& res) -> HandlerResponse {
        t_record = {.has_start = true, .start = Clock::now(), .job = nullptr};
        if (req.path == "/health" || authorized(req)) return HandlerResponse::Unhandled;
        write_error(res, invalid_api_key());
        return HandlerResponse::Handled;
    });
    http.Get("/health", [this](const Request&, Response& res) {
        const char* status = draining_ ? "shutting down" : model_ ? "ok" : "loading";
        res.status = model_ && !draining_ ? 200 : 503;
        res.set_content(std::string(R"({"status":")") + status + "\"}", "application/json");
    });
    http.Get("/v1/models", [this](const Request&, Response& res) {
        answer(res, [&] {
            const ModelInfo info{.id = ready_model().name(), .created = created_};
            res.set_content(models_json(std::span(&info, 1)), "application/json");
        });
    });
    http.Post("/v1/completions",
              [this](const Request& req, Response& res) { handle_generation(req, res, false); });
    http.Post("/v1/chat/completions",
              [this](const Request& req, Response& res) { handle_generation(req, res, true); });
    http.Get("/metrics", [this](const Request&, Response& res) {
        res.set_content(metrics_.render(), "text/plain; version=0.0.4; charset=utf-8");
    });
    http.Get("/", [](const Request&, Response& res) {
        const std::string_view page = chat_page_html();
        res.set_content(page.data(), page.size(), "text/html; charset=utf-8");
    });

    // httplib's own refusals come with an empty body: give them the error object.
    http.set_error_handler(httplib::Server::HandlerWithResponse(
        [this](const Request& req, Response& res) -> HandlerResponse {
            if (!res.body.empty() || res.content_provider_) return HandlerResponse::Unhandled;
            switch (res.status) {
                case 404:
                    write_error(res, unknown_url(req.method, req.path));
                    break;
                case 413:
                    write_error(res, body_too_large(content_length(req), options_.max_body_bytes));
                    break;
                case 400:
                    write_error(res, ApiError(400, "invalid_request_error", "", "bad_request",
                                              "Malformed HTTP request, or its body did not arrive "
                                              "within the server's read timeout"));
                    break;
                default:
                    write_error(res, ApiError(res.status, "invalid_request_error", "", "",
                                              Error::concat("HTTP ", res.status, " for ",
                                                            req.method, " ", req.path)));
            }
            return HandlerResponse::Handled;
        }));
    http.set_exception_handler([](const Request&, Response& res, std::exception_ptr ep) {
        try {
            std::rethrow_exception(ep);
        } catch (const std::exception& e) {
            write_error(res, server_error(e.what()));
        } catch (...) {
            write_error(res, server_error("unknown exception"));
        }
    });
    http.set_logger([this](const Request& req, const Response& res) { log_request(req, res); });
}

bool Server::authorized(const Request& req) const {
    if (options_.api_key.empty()) return true;
    const std::string header = req.get_header_value("Authorization");
    constexpr std::string_view kBearer = "Bearer ";
    if (header.size() <= kBearer.size() || header.compare(0, kBearer.size(), kBearer) != 0)
        return false;
    return same_secret(std::string_view(header).substr(kBearer.size()), options_.api_key);
}

std::shared_ptr<void> Server::enter_request() {
    std::lock_guard lock(stop_mutex_);
    if (draining_)
        throw ApiError(503, "server_error", "", "shutting_down",
                       "The server is shutting down and takes no new requests");
    ++n_in_flight_;
    return std::shared_ptr<void>(nullptr, [this](void*) {
        std::lock_guard inner(stop_mutex_);
        --n_in_flight_;
        stopped_cv_.notify_all();
    });
}

ServedModel& Server::ready_model() const {
    if (draining_)
        throw ApiError(503, "server_error", "", "shutting_down",
                       "The server is shutting down and takes no new requests");
    ServedModel* model = model_.load();
    if (!model)
        throw ApiError(503, "server_error", "", "model_loading",
                       "The model is still loading: retry when GET /health says \"ok\"");
    return *model;
}

void Server::handle_generation(const Request& req, Response& res, bool is_chat) {
    answer(res, [&] {
        std::function<bool()> is_client_gone = client_gone_check(req);
        ServedModel& model = ready_model();
        // Held until the answer is written in full (the stream's provider keeps a copy).
        const std::shared_ptr<void> in_flight = enter_request();
        if (req.body.size() > options_.max_body_bytes)  // a chunked body httplib let through
            throw body_too_large(req.body.size(), options_.max_body_bytes);
        const RequestLimits limits{.max_choices = options_.max_choices,
                                   .vocab_size = model.engine().vocab_size()};
        const uint64_t serial = serial_.fetch_add(1);
        ResponseMeta meta{.id = response_id(is_chat ? "chatcmpl-" : "cmpl-", serial),
                          .created = std::time(nullptr),
                          .model = model.name()};
        const uint64_t seed = seed_base_ ^ (serial * 0x9E3779B97F4A7C15ull);
        auto check_model = [&](const GenerationOptions& o) {
            if (!o.model.empty() && o.model != model.name()) throw model_not_found(o.model);
        };
        std::shared_ptr<GenerationJob> job;
        if (is_chat) {
            const ChatRequest r = parse_chat_request(req.body, limits);
            check_model(r.options);
            job = std::make_shared<GenerationJob>(r, model, *loop_, std::move(meta), seed);
        } else {
            const CompletionRequest r = parse_completion_request(req.body, limits);
            check_model(r.options);
            job = std::make_shared<GenerationJob>(r, model, *loop_, std::move(meta), seed);
        }
        t_record.job = job;
        // A client that hangs up gives its pages back now, not after max_tokens: a whole answer
        // writes nothing until its end, a stream nothing while queued or in prefill, so no failed
        // write would tell.
        job->watch_client(std::move(is_client_gone));
        if (!job->is_stream()) {
            std::string body = job->run_whole();
            if (job->client_left()) throw client_closed_request();
            res.set_content(std::move(body), "application/json");
            return;
        }
        res.set_header("Cache-Control", "no-cache");
        res.set_header("X-Accel-Buffering", "no");  // proxies pass events on as they come
        res.set_chunked_content_provider(
            "text/event-stream",
            [job, in_flight](size_t, httplib::DataSink& sink) {
                std::string out;
                const bool more = job->next_events(out);
                // A write that fails is a client gone: its sequences stop and free their pages.
                if (!out.empty() && !sink.write(out.data(), out.size())) {
                    job->cancel();
                    return false;
                }
                if (!more) sink.done();
                return true;
            },
            [job](bool success) {
                if (!success) job->cancel();
            });
    });
}

void Server::log_request(const Request& req, const Response& res) {
    metrics_.count_request(endpoint_label(req.path), res.status);
    char line[160];
    const double ms =
        t_record.has_start
            ? std::chrono::duration<double, std::milli>(Clock::now() - t_record.start).count()
            : 0.0;
    const GenerationJob* job = t_record.job.get();
    std::snprintf(line, sizeof line, " %d prompt_tokens=%lld generated_tokens=%lld %.1f ms",
                  res.status, (long long)(job ? job->n_prompt_tokens() : 0),
                  (long long)(job ? job->n_generated_tokens() : 0), ms);
    // The path as sent, cut short: a client picks it, the log line stays one line.
    std::string path = req.path.substr(0, 200);
    for (char& c : path)
        if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = '?';
    options_.log(req.method + " " + path + line);
    t_record = {};
}

int Server::start() {
    // A client that closes its socket mid-answer must fail the write, not kill the process.
    std::signal(SIGPIPE, SIG_IGN);
    int port = options_.port;
    if (port == 0)
        port = http_->bind_to_any_port(options_.host);
    else if (!http_->bind_to_port(options_.host, port))
        port = -1;
    if (port <= 0)
        throw Error("cannot listen on ", options_.host, ":", options_.port,
                    " (the port is in use, or the host is not an address of this machine): "
                    "choose another --port (0 picks a free one) or --host");
    port_ = port;
    listener_ = std::thread([this] { http_->listen_after_bind(); });
    return port_;
}

void Server::attach(ServedModel& model) {
    loop_ = std::make_unique<EngineLoop>(
        model.engine(), metrics_, options_.max_running + options_.max_waiting, model.n_kv_pages());
    created_ = std::time(nullptr);
    model_.store(&model);
}

void Server::shutdown(std::chrono::milliseconds drain) {
    {
        std::lock_guard lock(stop_mutex_);
        if (shut_down_) return;
        shut_down_ = true;
    }
    // New generation requests get 503 from now on, and /health says "shutting down". httplib's
    // stop() would cut streams mid-answer (its chunked writer checks for it), so the listening
    // socket closes only once the running requests are done.
    {
        std::unique_lock lock(stop_mutex_);
        draining_ = true;  // under the lock: enter_request() counts a request or refuses it
        const auto idle = [&] { return n_in_flight_ == 0; };
        if (!stopped_cv_.wait_for(lock, drain, idle)) {
            lock.unlock();
            if (loop_) loop_->cancel_all();  // past the drain time: what runs ends "length" now
            lock.lock();
            stopped_cv_.wait(lock, idle);
        }
    }
    http_->stop();
    if (listener_.joinable()) listener_.join();
    if (loop_) loop_->stop();
}

}  // namespace tandem::serve

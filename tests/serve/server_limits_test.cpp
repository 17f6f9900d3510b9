// The server's guards over real HTTP: the API key on every route but /health, 404 for unknown
// paths and models, 413 over the body limit, 429 with Retry-After when the queue is full, a
// client that disconnects (mid-stream, while queued, or waiting for a whole answer) giving its KV
// pages back, and a shutdown whose drain time runs out cancelling what still runs.
#include <gtest/gtest.h>
#include <httplib.h>

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <functional>
#include <nlohmann/json.hpp>
#include <thread>

#include "common/temp_dir.h"
#include "serve/server.h"
#include "server_util.h"

namespace tandem::serve {
namespace {

using nlohmann::json;
using testing::post_request;
using testing::raw_http;

const json kNoStopTokens = {{"256", -100}, {"257", -100}, {"258", -100}};

// A long reply: stop tokens banned, so it runs to max_tokens.
std::string long_body(int max_tokens, bool stream, int n = 1) {
    return json{{"prompt", "Hi"},
                {"max_tokens", max_tokens},
                {"temperature", 0},
                {"stream", stream},
                {"n", n},
                {"logit_bias", kNoStopTokens}}
        .dump();
}
std::string long_stream_body(int max_tokens) {
    return long_body(max_tokens, true);
}

class ServerLimitsTest : public ::testing::Test {
   protected:
    static void SetUpTestSuite() {
        dir_ = new testing::TempDir();
        testing::write_tiny_chat_model(dir_->path());
    }
    static void TearDownTestSuite() { delete dir_; }

    static std::unique_ptr<testing::TestServer> start(ServerOptions options = {}) {
        return testing::start_test_server(dir_->path(), std::move(options));
    }
    // The error object of a body, checked for OpenAI's shape.
    static json error_of(const std::string& body) {
        const json j = json::parse(body, nullptr, false);
        EXPECT_TRUE(j.is_object() && j.contains("error")) << body;
        if (!j.is_object() || !j.contains("error")) return json::object();
        const json& e = j["error"];
        EXPECT_TRUE(e["message"].is_string()) << body;
        EXPECT_TRUE(e["type"].is_string()) << body;
        EXPECT_TRUE(e.contains("param") && e.contains("code")) << body;
        return e;
    }
    // A gauge's or a counter's value in /metrics' text (-1: not there).
    static double gauge(const std::string& metrics, const std::string& name) {
        const size_t at = metrics.find("\n" + name + " ");
        if (at == std::string::npos) return -1;
        return std::stod(metrics.substr(at + name.size() + 2));
    }

    // A one-token completion is answered.
    static void expect_serves(int port) {
        httplib::Client c("127.0.0.1", port);
        auto r = c.Post("/v1/completions", R"({"prompt":"a","max_tokens":1})", "application/json");
        ASSERT_TRUE(r);
        EXPECT_EQ(r->status, 200) << r->body;
    }
    // /metrics once the engine is idle (the gauges follow each step: wait up to 2 s), with the
    // pool, the running sequences and the queue checked empty.
    static std::string idle_metrics(int port) {
        httplib::Client c("127.0.0.1", port);
        std::string metrics;
        for (int i = 0; i < 200; ++i) {
            metrics = c.Get("/metrics")->body;
            if (gauge(metrics, "tandem_kv_pages_in_use") == 0 &&
                gauge(metrics, "tandem_running_sequences") == 0 &&
                gauge(metrics, "tandem_queue_depth") == 0)
                break;
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
        EXPECT_EQ(gauge(metrics, "tandem_kv_pages_in_use"), 0) << metrics;
        EXPECT_EQ(gauge(metrics, "tandem_running_sequences"), 0) << metrics;
        EXPECT_EQ(gauge(metrics, "tandem_queue_depth"), 0) << metrics;
        return metrics;
    }

    static testing::TempDir* dir_;
};
testing::TempDir* ServerLimitsTest::dir_ = nullptr;

TEST_F(ServerLimitsTest, KeyIsNeededEverywhereButHealth) {
    ServerOptions o;
    o.api_key = "s3cret";
    auto t = start(o);
    httplib::Client c("127.0.0.1", t->port);
    const std::string chat = R"({"messages":[{"role":"user","content":"hi"}],"max_tokens":2})";
    struct Route {
        const char* method;
        const char* path;
    };
    for (const Route& r : {Route{"GET", "/v1/models"}, Route{"GET", "/metrics"}, Route{"GET", "/"},
                           Route{"POST", "/v1/chat/completions"}, Route{"POST", "/v1/completions"},
                           Route{"GET", "/no/such/path"}}) {
        for (const char* header : {"", "Authorization: Bearer wrong\r\n",
                                   "Authorization: s3cret\r\n", "Authorization: Bearer \r\n"}) {
            const std::string request = std::string(r.method) == "GET"
                                            ? std::string("GET ") + r.path +
                                                  " HTTP/1.1\r\nHost: x\r\n" + header +
                                                  "Connection: close\r\n\r\n"
                                            : post_request(r.path, chat, header);
            const testing::RawReply reply = raw_http(t->port, request);
            EXPECT_EQ(reply.status, 401) << r.method << " " << r.path << " with '" << header << "'";
            EXPECT_EQ(error_of(reply.body)["code"], "invalid_api_key") << r.path;
        }
    }
    EXPECT_EQ(c.Get("/health")->status, 200);
    c.set_bearer_token_auth("s3cret");
    EXPECT_EQ(c.Get("/v1/models")->status, 200);
    EXPECT_EQ(c.Get("/metrics")->status, 200);
    EXPECT_EQ(c.Post("/v1/chat/completions", chat, "application/json")->status, 200);
}

TEST_F(ServerLimitsTest, UnknownPathsAndModelsAre404) {
    auto t = start();
    httplib::Client c("127.0.0.1", t->port);
    auto r = c.Post("/v1/embeddings", R"({"input":"x"})", "application/json");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 404);
    const json e = error_of(r->body);
    EXPECT_EQ(e["code"], "unknown_url");
    EXPECT_NE(e["message"].get<std::string>().find("POST /v1/embeddings"), std::string::npos);

    r = c.Post("/v1/chat/completions",
               R"({"model":"gpt-9","messages":[{"role":"user","content":"hi"}]})",
               "application/json");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 404);
    EXPECT_EQ(error_of(r->body)["code"], "model_not_found");
    EXPECT_NE(r->body.find("gpt-9"), std::string::npos);
}

TEST_F(ServerLimitsTest, BodyOverTheLimitIs413AndTheServerGoesOn) {
    ServerOptions o;
    o.max_body_bytes = 2000;
    auto t = start(o);
    const std::string big = json{{"prompt", std::string(3000, 'a')}, {"max_tokens", 1}}.dump();
    const testing::RawReply reply = raw_http(t->port, post_request("/v1/completions", big));
    EXPECT_EQ(reply.status, 413) << reply.head;
    const json e = error_of(reply.body);
    EXPECT_EQ(e["code"], "request_too_large");
    EXPECT_NE(e["message"].get<std::string>().find("2000"), std::string::npos) << e;
    expect_serves(t->port);
}

// One sequence may run and none wait: a second request while the first streams gets 429.
TEST_F(ServerLimitsTest, FullQueueIs429WithRetryAfter) {
    ServerOptions o;
    o.max_running = 1;
    o.max_waiting = 0;
    auto t = start(o);
    bool checked = false;
    testing::post_streamed(
        t->port, "/v1/completions", long_stream_body(240), [&](const std::string&) {
            if (checked) return;
            checked = true;
            httplib::Client other("127.0.0.1", t->port);
            auto r = other.Post("/v1/completions", R"({"prompt":"x","max_tokens":1})",
                                "application/json");
            ASSERT_TRUE(r);
            EXPECT_EQ(r->status, 429);
            EXPECT_EQ(r->get_header_value("Retry-After"), "1");
            EXPECT_EQ(error_of(r->body)["code"], "queue_full");
        });
    EXPECT_TRUE(checked);
    expect_serves(t->port);  // the slot is free again
}

// A completion of two prompts whose second finds the server full: the first, already queued, is
// cancelled rather than left to run for nobody.
TEST_F(ServerLimitsTest, QueueFullOnALaterPromptCancelsTheEarlierOnes) {
    ServerOptions o;
    o.max_running = 1;
    o.max_waiting = 2;
    auto t = start(o);
    httplib::Client c("127.0.0.1", t->port);
    const json body = {{"prompt", {"a", "b"}},
                       {"n", 2},
                       {"max_tokens", 200},
                       {"temperature", 0},
                       {"logit_bias", kNoStopTokens}};
    auto r = c.Post("/v1/completions", body.dump(), "application/json");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 429);
    // Left to run, the first prompt's 400 tokens would take the tiny model well under this.
    std::this_thread::sleep_for(std::chrono::milliseconds(400));
    const std::string metrics = idle_metrics(t->port);
    const size_t at = metrics.find("\ntandem_generated_tokens_total ");
    ASSERT_NE(at, std::string::npos);
    EXPECT_LT(std::stod(metrics.substr(at + 31)), 400) << metrics;
}

// A client that goes away mid-stream cancels its sequence: its pages return to the pool.
TEST_F(ServerLimitsTest, DisconnectMidStreamFreesThePages) {
    auto t = start();
    const int max_tokens = 240;
    // Read until the first event, then close the socket.
    testing::RawReply reply = raw_http(
        t->port, post_request("/v1/completions", long_stream_body(max_tokens)), 10, 0, "data: ");
    ASSERT_EQ(reply.status, 200) << reply.head;
    const std::string metrics = idle_metrics(t->port);
    EXPECT_GT(gauge(metrics, "tandem_kv_pages_total"), 0) << metrics;
    // Cancelled, not run to the end: fewer tokens than asked were generated.
    const size_t at = metrics.find("\ntandem_generated_tokens_total ");
    ASSERT_NE(at, std::string::npos);
    EXPECT_LT(std::stod(metrics.substr(at + 31)), max_tokens) << metrics;
}

// A client that hangs up while it waits for a whole (non-streamed) answer, which writes nothing
// before its end: its sequences are cancelled, every page is back in the pool within a second,
// far fewer tokens than asked are generated, and the log line says 499. With n > 1 likewise.
TEST_F(ServerLimitsTest, DisconnectWhileWaitingForAWholeAnswerFreesThePages) {
    using Clock = std::chrono::steady_clock;
    // The tiny model writes 240 tokens in about 0.1 s: a context of 2,048 gives replies that
    // last long enough to hang up halfway.
    const testing::TempDir long_dir;
    testing::write_tiny_chat_model(long_dir.path(), 2048);
    auto t = testing::start_test_server(long_dir.path(), {}, {.max_seqs = 8});
    httplib::Client c("127.0.0.1", t->port);
    const int max_tokens = 2000;
    const auto full_start = Clock::now();
    auto full = c.Post("/v1/completions", long_body(max_tokens, false), "application/json");
    ASSERT_TRUE(full && full->status == 200);
    const double full_s = std::chrono::duration<double>(Clock::now() - full_start).count();
    // A client that stays is watched all along (a check every 50 ms) and never taken for gone.
    EXPECT_EQ(json::parse(full->body)["usage"]["completion_tokens"], max_tokens);
    for (int n : {1, 4}) {
        const double before = gauge(c.Get("/metrics")->body, "tandem_generated_tokens_total");
        const int fd = testing::send_request(
            t->port, post_request("/v1/completions", long_body(max_tokens, false, n)));
        ASSERT_GE(fd, 0);
        // Hang up once the answer is under way: its sequences hold pages.
        for (int i = 0; i < 1000; ++i) {
            if (gauge(c.Get("/metrics")->body, "tandem_kv_pages_in_use") > 0) break;
            std::this_thread::sleep_for(std::chrono::milliseconds(2));
        }
        ::close(fd);
        const auto closed = Clock::now();
        const std::string metrics = idle_metrics(t->port);
        const double freed_s = std::chrono::duration<double>(Clock::now() - closed).count();
        EXPECT_LT(freed_s, 1.0) << "n=" << n;
        const double generated = gauge(metrics, "tandem_generated_tokens_total") - before;
        EXPECT_LT(generated, n * max_tokens / 2) << "n=" << n << "; a whole answer of "
                                                 << max_tokens << " tokens took " << full_s << " s";
        std::printf("n=%d: pages back %.3f s after the close, %g of %d tokens generated (a whole "
                    "answer took %.3f s)\n",
                    n, freed_s, generated, n * max_tokens, full_s);
    }
    // The handler logs once the cancelled answer has ended: wait for its line.
    int n_closed = 0;
    for (int i = 0; i < 200 && n_closed < 2; ++i) {
        n_closed = 0;
        for (const std::string& line : t->log->lines())
            n_closed += line.rfind("POST /v1/completions 499 ", 0) == 0;
        if (n_closed < 2) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    EXPECT_EQ(n_closed, 2);
    expect_serves(t->port);
}

// A streamed client that hangs up while its request waits for a free slot (no event yet, so no
// write that could fail) leaves the queue at once, not when the slot frees.
TEST_F(ServerLimitsTest, DisconnectWhileQueuedLeavesTheQueue) {
    const testing::TempDir long_dir;
    testing::write_tiny_chat_model(long_dir.path(), 2048);
    auto t = testing::start_test_server(long_dir.path(), {}, {.max_seqs = 1});
    httplib::Client c("127.0.0.1", t->port);
    const int max_tokens = 2000;
    const std::string request = post_request("/v1/completions", long_body(max_tokens, true));
    // Polls /metrics until `done` holds; returns the last scrape.
    auto metrics_until = [&](const std::function<bool(const std::string&)>& done) {
        std::string m;
        for (int i = 0; i < 2000; ++i) {
            m = c.Get("/metrics")->body;
            if (done(m)) break;
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
        }
        return m;
    };
    const int running = testing::send_request(t->port, request);
    ASSERT_GE(running, 0);
    metrics_until([&](const std::string& m) { return gauge(m, "tandem_running_sequences") == 1; });
    const int queued = testing::send_request(t->port, request);
    ASSERT_GE(queued, 0);
    std::string m =
        metrics_until([&](const std::string& m) { return gauge(m, "tandem_queue_depth") == 1; });
    ASSERT_EQ(gauge(m, "tandem_queue_depth"), 1) << m;
    ::close(queued);
    m = metrics_until([&](const std::string& m) { return gauge(m, "tandem_queue_depth") == 0; });
    EXPECT_EQ(gauge(m, "tandem_queue_depth"), 0) << m;
    // Out of the queue while the first reply still runs: cancelled, not served after it.
    EXPECT_LT(gauge(m, "tandem_generated_tokens_total"), max_tokens) << m;
    ::close(running);
    idle_metrics(t->port);
}

// A whole answer is one plain body with its exact Content-Length, quick or slow: watching the
// client writes nothing to it.
TEST_F(ServerLimitsTest, WholeAnswersKeepAnExactContentLength) {
    auto t = start();
    for (int max_tokens : {2, 240}) {
        const testing::RawReply reply =
            raw_http(t->port, post_request("/v1/completions", long_body(max_tokens, false)), 30);
        ASSERT_EQ(reply.status, 200) << reply.head;
        EXPECT_NE(reply.head.find("Content-Length: " + std::to_string(reply.body.size()) + "\r\n"),
                  std::string::npos)
            << reply.head;
        EXPECT_EQ(reply.head.find("chunked"), std::string::npos) << reply.head;
        const json j = json::parse(reply.body);
        EXPECT_EQ(j["usage"]["completion_tokens"], max_tokens);
        EXPECT_EQ(j["choices"][0]["finish_reason"], "length");
    }
}

// Shutdown lets a running stream finish while new requests get 503, then closes the listener.
TEST_F(ServerLimitsTest, ShutdownDrainsRunningStreamsAndRefusesNewRequests) {
    auto t = start();
    std::thread stopper;
    const json body = {{"prompt", "Hi"},
                       {"max_tokens", 120},
                       {"temperature", 0},
                       {"stream", true},
                       {"stream_options", {{"include_usage", true}}},
                       {"logit_bias", kNoStopTokens}};
    const std::string received = testing::post_streamed(
        t->port, "/v1/completions", body.dump(), [&](const std::string& before) {
            if (!before.empty()) return;
            stopper = std::thread([&] { t->server->shutdown(std::chrono::seconds(20)); });
            httplib::Client other("127.0.0.1", t->port);
            httplib::Result health = other.Get("/health");
            for (int i = 0; i < 200 && health && health->status == 200; ++i) {
                std::this_thread::sleep_for(std::chrono::milliseconds(5));
                health = other.Get("/health");
            }
            ASSERT_TRUE(health && health->status == 503);
            EXPECT_EQ(json::parse(health->body)["status"], "shutting down");
            auto refused = other.Post("/v1/completions", R"({"prompt":"x","max_tokens":1})",
                                      "application/json");
            ASSERT_TRUE(refused && refused->status == 503);
            EXPECT_EQ(json::parse(refused->body)["error"]["code"], "shutting_down");
        });
    stopper.join();
    const auto events = testing::sse_data(received);
    ASSERT_GE(events.size(), 3u);
    EXPECT_EQ(events.back(), "[DONE]");
    EXPECT_EQ(json::parse(events[events.size() - 2])["usage"]["completion_tokens"], 120);
    EXPECT_FALSE(httplib::Client("127.0.0.1", t->port).Get("/health"));
}

// Past the drain time, what still runs is cancelled: the stream ends early but whole ([DONE]).
TEST_F(ServerLimitsTest, ShutdownPastTheDrainTimeCutsStreamsCleanly) {
    auto t = start();
    std::thread stopper;
    const std::string received = testing::post_streamed(
        t->port, "/v1/completions", long_stream_body(240), [&](const std::string& before) {
            if (before.empty())
                stopper = std::thread([&] { t->server->shutdown(std::chrono::milliseconds(0)); });
        });
    stopper.join();
    const auto events = testing::sse_data(received);
    ASSERT_GE(events.size(), 2u);
    EXPECT_EQ(events.back(), "[DONE]");
    const json last = json::parse(events[events.size() - 2]);
    EXPECT_EQ(last["choices"][0]["finish_reason"], "length");
    EXPECT_LT(events.size(), 240u);
    EXPECT_FALSE(httplib::Client("127.0.0.1", t->port).Get("/health"));
}

// Many clients at once, streamed and whole, some hanging up mid-stream: every answer that ran to
// its end is the greedy reply of its prompt, and every page is back in the pool at the end.
TEST_F(ServerLimitsTest, ConcurrentClientsGetTheirOwnRepliesAndThePoolEmpties) {
    ServerOptions o;
    o.max_running = 8;
    o.max_waiting = 64;
    auto t = start(o);
    const int n_clients = 12, n_each = 6;
    auto body_of = [](int k, bool stream) {
        return json{{"prompt", "client " + std::to_string(k % 5)},
                    {"max_tokens", 8 + k % 5},
                    {"temperature", 0},
                    {"stream", stream},
                    {"logit_bias", kNoStopTokens}}
            .dump();
    };
    // The reply each prompt should get, asked one at a time first.
    std::vector<std::string> expected(5);
    httplib::Client c("127.0.0.1", t->port);
    for (int k = 0; k < 5; ++k)
        expected[k] = json::parse(c.Post("/v1/completions", body_of(k, false), "application/json")
                                      ->body)["choices"][0]["text"];
    std::atomic<int> wrong{0}, done{0};
    std::vector<std::thread> clients;
    for (int i = 0; i < n_clients; ++i)
        clients.emplace_back([&, i] {
            for (int j = 0; j < n_each; ++j) {
                const int k = i * n_each + j;
                const bool stream = k % 2 == 0;
                if (k % 7 == 3) {  // hang up after the first event
                    raw_http(t->port, post_request("/v1/completions", body_of(k, true)), 10, 0,
                             "data: ");
                    continue;
                }
                httplib::Client client("127.0.0.1", t->port);
                client.set_read_timeout(30, 0);
                auto r = client.Post("/v1/completions", body_of(k, stream), "application/json");
                std::string text;
                if (r && r->status == 200 && !stream) {
                    text = json::parse(r->body)["choices"][0]["text"];
                } else if (r && r->status == 200) {
                    for (const std::string& e : testing::sse_data(r->body))
                        if (e != "[DONE]")
                            text += json::parse(e)["choices"][0]["text"].get<std::string>();
                }
                if (!r || r->status != 200 || text != expected[k % 5]) ++wrong;
                ++done;
            }
        });
    for (std::thread& th : clients) th.join();
    EXPECT_EQ(wrong, 0);
    EXPECT_GT(done, n_clients * n_each / 2);
    idle_metrics(t->port);
}

}  // namespace
}  // namespace tandem::serve

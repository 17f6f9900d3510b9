// The server over real HTTP on a tiny model: every route, streamed and whole answers, n > 1,
// stop strings, usage equal to the tokenizer's counts, the greedy reply equal to the engine's own,
// the log line, metrics, and /health while the model loads.
#include "serve/server.h"

#include <gtest/gtest.h>
#include <httplib.h>

#include <nlohmann/json.hpp>
#include <thread>

#include "common/temp_dir.h"
#include "infer/generate.h"
#include "server_util.h"

namespace tandem::serve {
namespace {

using nlohmann::json;
using testing::sse_data;

// Stop tokens banned, so that a random model's reply runs to max_tokens.
const json kNoStopTokens = {{"256", -100}, {"257", -100}, {"258", -100}};

class ServerTest : public ::testing::Test {
   protected:
    static void SetUpTestSuite() {
        dir_ = new testing::TempDir();
        testing::write_tiny_chat_model(dir_->path());
        server_ = testing::start_test_server(dir_->path()).release();
    }
    static void TearDownTestSuite() {
        delete server_;
        delete dir_;
    }

    static httplib::Client client() {
        httplib::Client c("127.0.0.1", server_->port);
        c.set_read_timeout(30, 0);
        return c;
    }
    static json post_json(const std::string& path, const json& body, int want_status = 200) {
        auto r = client().Post(path, body.dump(), "application/json");
        EXPECT_TRUE(r) << path;
        if (!r) return json();
        EXPECT_EQ(r->status, want_status) << r->body;
        return json::parse(r->body);
    }
    // The text as JSON carries it: invalid UTF-8 replaced by U+FFFD.
    static std::string as_json_text(const std::string& s) {
        return json::parse(json(s).dump(-1, ' ', false, json::error_handler_t::replace))
            .get<std::string>();
    }

    static testing::TempDir* dir_;
    static testing::TestServer* server_;
};
testing::TempDir* ServerTest::dir_ = nullptr;
testing::TestServer* ServerTest::server_ = nullptr;

TEST_F(ServerTest, HealthModelsChatPageAndMetricsAnswer) {
    auto health = client().Get("/health");
    ASSERT_TRUE(health);
    EXPECT_EQ(health->status, 200);
    EXPECT_EQ(json::parse(health->body)["status"], "ok");

    auto models = client().Get("/v1/models");
    ASSERT_TRUE(models);
    EXPECT_EQ(models->status, 200);
    const json m = json::parse(models->body);
    EXPECT_EQ(m["object"], "list");
    ASSERT_EQ(m["data"].size(), 1u);
    EXPECT_EQ(m["data"][0]["id"], "tiny");
    EXPECT_EQ(m["data"][0]["object"], "model");

    auto page = client().Get("/");
    ASSERT_TRUE(page);
    EXPECT_EQ(page->status, 200);
    EXPECT_NE(page->get_header_value("Content-Type").find("text/html"), std::string::npos);
    EXPECT_NE(page->body.find("/v1/chat/completions"), std::string::npos);

    // A request is counted once its answer is written: the /health above may still be going.
    auto metrics = client().Get("/metrics");
    for (int i = 0;
         i < 100 && metrics && metrics->body.find("endpoint=\"/health\"") == std::string::npos;
         ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
        metrics = client().Get("/metrics");
    }
    ASSERT_TRUE(metrics);
    EXPECT_EQ(metrics->status, 200);
    for (const char* series :
         {"tandem_kv_pages_in_use", "tandem_kv_pages_total", "tandem_queue_depth",
          "tandem_running_sequences", "tandem_time_to_first_token_seconds_bucket",
          "tandem_time_per_output_token_seconds_bucket",
          "tandem_requests_total{endpoint=\"/health\",status=\"200\"}"})
        EXPECT_NE(metrics->body.find(series), std::string::npos) << series;
}

TEST_F(ServerTest, ChatCompletionCountsTokensAsTheTokenizerDoes) {
    const json body = {{"model", "tiny"},
                       {"messages",
                        {{{"role", "system"}, {"content", "Be brief."}},
                         {{"role", "user"}, {"content", "Hello there"}}}},
                       {"max_tokens", 12},
                       {"temperature", 0}};
    const json r = post_json("/v1/chat/completions", body);
    EXPECT_EQ(r["object"], "chat.completion");
    EXPECT_EQ(r["model"], "tiny");
    ASSERT_EQ(r["choices"].size(), 1u);
    EXPECT_EQ(r["choices"][0]["message"]["role"], "assistant");
    const std::string finish = r["choices"][0]["finish_reason"];
    EXPECT_TRUE(finish == "stop" || finish == "length") << finish;

    const std::vector<ChatMessage> messages = {{Role::System, "Be brief."},
                                               {Role::User, "Hello there"}};
    const auto prompt = server_->model->encode_chat(messages, true);
    EXPECT_EQ(r["usage"]["prompt_tokens"], prompt.size());
    const int64_t completion = r["usage"]["completion_tokens"];
    EXPECT_LE(completion, 12);
    if (finish == "length") EXPECT_EQ(completion, 12);
    EXPECT_EQ(r["usage"]["total_tokens"], int64_t(prompt.size()) + completion);
}

// The reply through the server is the engine's own greedy output for the same prompt, and the
// usage counts are the tokenizer's.
TEST_F(ServerTest, GreedyCompletionEqualsTheEnginesOwn) {
    const std::string prompt = "Once upon a time";
    const json r = post_json("/v1/completions", {{"prompt", prompt},
                                                 {"max_tokens", 24},
                                                 {"temperature", 0},
                                                 {"logit_bias", kNoStopTokens}});
    ASSERT_EQ(r["choices"].size(), 1u);
    EXPECT_EQ(r["object"], "text_completion");

    ServedModelOptions o;
    o.path = dir_->path();
    o.max_seqs = 1;
    auto own = ServedModel::load(o);
    infer::Request req;
    req.prompt = own->encode_completion_prompt(prompt);
    req.sampling.temperature = 0;
    req.sampling.logit_bias = {{256, -100.f}, {257, -100.f}, {258, -100.f}};
    req.max_tokens = 24;
    req.stop_ids = own->completion_stop_ids();
    const auto completions = own->engine().run_to_completion({req});
    EXPECT_EQ(r["choices"][0]["text"], as_json_text(completions[0][0].text));
    EXPECT_EQ(r["choices"][0]["finish_reason"], "length");
    EXPECT_EQ(r["usage"]["prompt_tokens"], req.prompt.size());
    EXPECT_EQ(r["usage"]["completion_tokens"], 24);
}

TEST_F(ServerTest, StreamedChatEqualsTheWholeAnswerAndEndsWithUsageAndDone) {
    json body = {{"messages", {{{"role", "user"}, {"content", "Tell me a story"}}}},
                 {"max_tokens", 16},
                 {"temperature", 0},
                 {"logit_bias", kNoStopTokens}};
    const json whole = post_json("/v1/chat/completions", body);
    body["stream"] = true;
    body["stream_options"] = {{"include_usage", true}};
    auto r = client().Post("/v1/chat/completions", body.dump(), "application/json");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200);
    EXPECT_NE(r->get_header_value("Content-Type").find("text/event-stream"), std::string::npos);
    const auto events = sse_data(r->body);
    ASSERT_GE(events.size(), 3u);
    EXPECT_EQ(events.back(), "[DONE]");
    std::string text;
    std::string finish;
    for (size_t i = 0; i + 2 < events.size(); ++i) {
        const json chunk = json::parse(events[i]);
        EXPECT_EQ(chunk["object"], "chat.completion.chunk");
        EXPECT_TRUE(chunk["usage"].is_null());
        const json& c = chunk["choices"][0];
        if (i == 0) EXPECT_EQ(c["delta"]["role"], "assistant");
        if (c["delta"].contains("content")) text += c["delta"]["content"].get<std::string>();
        if (!c["finish_reason"].is_null()) finish = c["finish_reason"];
    }
    EXPECT_EQ(text, whole["choices"][0]["message"]["content"]);
    EXPECT_EQ(finish, "length");
    const json usage_chunk = json::parse(events[events.size() - 2]);
    EXPECT_TRUE(usage_chunk["choices"].empty());
    EXPECT_EQ(usage_chunk["usage"], whole["usage"]);
}

TEST_F(ServerTest, SeveralChoicesWholeAndStreamed) {
    json body = {{"prompt", {"The sea", "A cat"}},
                 {"n", 2},
                 {"max_tokens", 8},
                 {"temperature", 1.0},
                 {"seed", 5},
                 {"logit_bias", kNoStopTokens}};
    const json whole = post_json("/v1/completions", body);
    ASSERT_EQ(whole["choices"].size(), 4u);
    for (int i = 0; i < 4; ++i) {
        EXPECT_EQ(whole["choices"][i]["index"], i);
        EXPECT_EQ(whole["choices"][i]["finish_reason"], "length");
    }
    EXPECT_EQ(whole["usage"]["completion_tokens"], 32);
    // The seed repeats the answer.
    EXPECT_EQ(post_json("/v1/completions", body)["choices"], whole["choices"]);

    body["stream"] = true;
    auto r = client().Post("/v1/completions", body.dump(), "application/json");
    ASSERT_TRUE(r);
    std::vector<std::string> texts(4);
    int finished = 0;
    for (const std::string& e : sse_data(r->body)) {
        if (e == "[DONE]") continue;
        const json c = json::parse(e)["choices"][0];
        texts[c["index"].get<size_t>()] += c["text"].get<std::string>();
        finished += !c["finish_reason"].is_null();
    }
    EXPECT_EQ(finished, 4);
    for (int i = 0; i < 4; ++i) EXPECT_EQ(texts[i], whole["choices"][i]["text"]) << i;
}

// A stop string taken from the middle of the greedy reply cuts it right before its first place.
TEST_F(ServerTest, StopStringEndsTheReplyBeforeIt) {
    json body = {
        {"prompt", "Hello"}, {"max_tokens", 40}, {"temperature", 0}, {"logit_bias", kNoStopTokens}};
    const std::string full = post_json("/v1/completions", body)["choices"][0]["text"];
    std::string stop;
    for (size_t i = 10; i + 2 < full.size() && stop.empty(); ++i)
        if (std::isalnum(static_cast<unsigned char>(full[i])) &&
            std::isalnum(static_cast<unsigned char>(full[i + 1])))
            stop = full.substr(i, 2);
    if (stop.empty()) GTEST_SKIP() << "the tiny model's reply has no two ASCII letters: " << full;
    body["stop"] = stop;
    for (bool stream : {false, true}) {
        body["stream"] = stream;
        auto r = client().Post("/v1/completions", body.dump(), "application/json");
        ASSERT_TRUE(r);
        std::string text, finish;
        if (!stream) {
            const json c = json::parse(r->body)["choices"][0];
            text = c["text"], finish = c["finish_reason"];
        } else {
            for (const std::string& e : sse_data(r->body)) {
                if (e == "[DONE]") continue;
                const json c = json::parse(e)["choices"][0];
                text += c["text"].get<std::string>();
                if (!c["finish_reason"].is_null()) finish = c["finish_reason"];
            }
        }
        EXPECT_EQ(text, full.substr(0, full.find(stop))) << "stream " << stream;
        EXPECT_EQ(finish, "stop");
    }
}

TEST_F(ServerTest, LogsOneLinePerRequestWithTokens) {
    const json r = post_json(
        "/v1/completions",
        {{"prompt", "abc"}, {"max_tokens", 3}, {"temperature", 0}, {"logit_bias", kNoStopTokens}});
    // The logger runs after the answer is written: wait for it briefly.
    std::string found;
    for (int i = 0; i < 100 && found.empty(); ++i) {
        for (const std::string& line : server_->log->lines())
            if (line.find("POST /v1/completions 200 prompt_tokens=3 generated_tokens=3") == 0)
                found = line;
        if (found.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    EXPECT_NE(found, "") << "no log line for the request";
    EXPECT_NE(found.find(" ms"), std::string::npos) << found;
}

TEST(ServerLoading, HealthSaysLoadingUntilTheModelIsAttached) {
    testing::TempDir dir;
    testing::write_tiny_chat_model(dir.path());
    auto t = testing::start_test_server(dir.path(), {}, {}, /*load=*/false);
    httplib::Client c("127.0.0.1", t->port);
    auto health = c.Get("/health");
    ASSERT_TRUE(health);
    EXPECT_EQ(health->status, 503);
    EXPECT_EQ(json::parse(health->body)["status"], "loading");
    auto chat = c.Post("/v1/chat/completions", R"({"messages":[{"role":"user","content":"hi"}]})",
                       "application/json");
    ASSERT_TRUE(chat);
    EXPECT_EQ(chat->status, 503);
    EXPECT_EQ(json::parse(chat->body)["error"]["code"], "model_loading");

    ServedModelOptions o;
    o.path = dir.path();
    t->model = ServedModel::load(o);
    t->server->attach(*t->model);
    health = c.Get("/health");
    ASSERT_TRUE(health);
    EXPECT_EQ(health->status, 200);
    EXPECT_EQ(json::parse(health->body)["status"], "ok");
}

}  // namespace
// <|im_end|> pushed to the top ends a chat reply at once; with llama.cpp's ignore_eos it is banned
// instead and the reply runs to max_tokens.
TEST_F(ServerTest, IgnoreEosRunsTheReplyToMaxTokens) {
    const json forced_end = {{"258", 100}};
    json body = {{"messages", {{{"role", "user"}, {"content", "hi"}}}},
                 {"max_tokens", 6}, {"temperature", 0}, {"logit_bias", forced_end}};
    const json ended = post_json("/v1/chat/completions", body);
    EXPECT_EQ(ended["choices"][0]["finish_reason"], "stop");
    EXPECT_EQ(ended["usage"]["completion_tokens"], 0);
    body["ignore_eos"] = true;
    const json ran = post_json("/v1/chat/completions", body);
    EXPECT_EQ(ran["choices"][0]["finish_reason"], "length");
    EXPECT_EQ(ran["usage"]["completion_tokens"], 6);
}

}  // namespace tandem::serve

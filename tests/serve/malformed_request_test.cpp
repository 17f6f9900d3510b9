// Malformed requests over real HTTP, on one server: bad JSON, wrong types, numbers out of range,
// invalid UTF-8, empty messages, prompts past the context, a 10 MB body, broken HTTP, a body
// sent one byte at a time slower than the read timeout. Each gets its 4xx and an OpenAI error
// object naming the culprit, and the server answers a good request after each.
#include <gtest/gtest.h>
#include <httplib.h>

#include <chrono>
#include <nlohmann/json.hpp>

#include "common/temp_dir.h"
#include "serve/server.h"
#include "server_util.h"

namespace tandem::serve {
namespace {

using nlohmann::json;
using testing::post_request;
using testing::raw_http;

constexpr const char* kChat = "/v1/chat/completions";
constexpr const char* kCompletions = "/v1/completions";

struct Case {
    const char* what;
    const char* path;
    std::string body;
    int status;
    std::string names;  // the error's param, or a part of its message when param is null
};

std::string chat_with(const std::string& fields) {
    return R"({"messages":[{"role":"user","content":"hi"}],)" + fields + "}";
}

std::vector<Case> cases() {
    const std::string deep = std::string(100, '[') + std::string(100, ']');
    return {
        {"invalid JSON", kChat, "{\"messages\": [", 400, "JSON"},
        {"empty body", kChat, "", 400, "JSON"},
        {"a JSON array", kChat, "[]", 400, "object"},
        {"JSON null", kChat, "null", 400, "object"},
        {"trailing garbage", kChat, chat_with(R"("max_tokens":1)") + "xyz", 400, "JSON"},
        {"nesting 100 deep", kChat, R"({"messages":)" + deep + "}", 400, "nest"},
        {"messages a string", kChat, R"({"messages":"hi"})", 400, "messages"},
        {"messages missing", kChat, R"({"model":"tiny"})", 400, "messages"},
        {"messages empty", kChat, R"({"messages":[]})", 400, "messages"},
        {"message not an object", kChat, R"({"messages":[42]})", 400, "messages[0]"},
        {"unknown role", kChat, R"({"messages":[{"role":"wizard","content":"hi"}]})", 400,
         "messages[0].role"},
        {"content a number", kChat, R"({"messages":[{"role":"user","content":7}]})", 400,
         "messages[0].content"},
        {"an image part", kChat,
         R"({"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"x"}}]}]})",
         400, "messages[0].content"},
        {"invalid UTF-8 in content", kChat,
         "{\"messages\":[{\"role\":\"user\",\"content\":\"a\xff\xfe b\"}]}", 400, "UTF-8"},
        {"invalid UTF-8 in a key", kChat,
         "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"\xc3\x28\":1}", 400, "UTF-8"},
        {"lone surrogate", kChat, R"({"messages":[{"role":"user","content":"\ud800"}]})", 400,
         "JSON"},
        {"max_tokens negative", kChat, chat_with(R"("max_tokens":-1)"), 400, "max_tokens"},
        {"max_tokens huge", kChat, chat_with(R"("max_tokens":99999999999999999999999)"), 400,
         "max_tokens"},
        {"max_tokens a float", kChat, chat_with(R"("max_tokens":2.5)"), 400, "max_tokens"},
        {"max_completion_tokens past the context", kChat,
         chat_with(R"("max_completion_tokens":100000)"), 400, "max_completion_tokens"},
        {"number 1e999", kChat, chat_with(R"("temperature":1e999)"), 400, "JSON"},
        {"temperature a string", kChat, chat_with(R"("temperature":"hot")"), 400, "temperature"},
        {"temperature out of range", kChat, chat_with(R"("temperature":5)"), 400, "temperature"},
        {"top_p zero", kChat, chat_with(R"("top_p":0)"), 400, "top_p"},
        {"frequency_penalty 3", kChat, chat_with(R"("frequency_penalty":3)"), 400,
         "frequency_penalty"},
        {"n zero", kChat, chat_with(R"("n":0)"), 400, "n"},
        {"n past the limit", kChat, chat_with(R"("n":1000)"), 400, "n"},
        {"stream a string", kChat, chat_with(R"("stream":"yes")"), 400, "stream"},
        {"five stop strings", kChat, chat_with(R"("stop":["a","b","c","d","e"])"), 400, "stop"},
        {"stop a number", kChat, chat_with(R"("stop":5)"), 400, "stop"},
        {"logit_bias key not a number", kChat, chat_with(R"("logit_bias":{"abc":1})"), 400,
         "logit_bias"},
        {"logit_bias id past the vocabulary", kChat, chat_with(R"("logit_bias":{"999999":1})"), 400,
         "logit_bias"},
        {"logit_bias value 1000", kChat, chat_with(R"("logit_bias":{"65":1000})"), 400,
         "logit_bias"},
        {"top_logprobs 50", kChat, chat_with(R"("logprobs":true,"top_logprobs":50)"), 400,
         "top_logprobs"},
        {"tools", kChat, chat_with(R"("tools":[{"type":"function","function":{"name":"f"}}])"), 400,
         "tools"},
        {"model a number", kChat, chat_with(R"("model":123)"), 400, "model"},
        {"prompt past the context", kChat,
         R"({"messages":[{"role":"user","content":")" + std::string(400, 'x') + R"("}]})", 400,
         "messages"},
        {"prompt a number", kCompletions, R"({"prompt":123})", 400, "prompt"},
        {"prompt an empty list", kCompletions, R"({"prompt":[]})", 400, "prompt"},
        {"token id negative", kCompletions, R"({"prompt":[1,-1]})", 400, "prompt"},
        {"token id past the vocabulary", kCompletions, R"({"prompt":[[1,2],[99999]]})", 400,
         "prompt"},
        {"echo", kCompletions, R"({"prompt":"a","echo":true})", 400, "echo"},
        {"best_of 3", kCompletions, R"({"prompt":"a","best_of":3})", 400, "best_of"},
        {"completion prompt + max_tokens past the context", kCompletions,
         R"({"prompt":"abc","max_tokens":1000})", 400, "max_tokens"},
        {"completion logprobs 9", kCompletions, R"({"prompt":"a","logprobs":9})", 400, "logprobs"},
    };
}

class MalformedRequestTest : public ::testing::Test {
   protected:
    static void SetUpTestSuite() {
        dir_ = new testing::TempDir();
        testing::write_tiny_chat_model(dir_->path());
        ServerOptions o;
        o.read_timeout_s = 0.3;  // the slow client below is cut after this
        server_ = testing::start_test_server(dir_->path(), o).release();
    }
    static void TearDownTestSuite() {
        delete server_;
        delete dir_;
    }

    // The error object of a reply, checked for OpenAI's shape.
    static json error_of(const testing::RawReply& reply) {
        const json j = json::parse(reply.body, nullptr, false);
        EXPECT_TRUE(j.is_object() && j.contains("error")) << reply.head << "\n" << reply.body;
        if (!j.is_object() || !j.contains("error")) return json::object();
        const json& e = j["error"];
        EXPECT_TRUE(e["message"].is_string()) << reply.body;
        EXPECT_TRUE(e["type"].is_string()) << reply.body;
        EXPECT_TRUE(e.contains("param") && e.contains("code")) << reply.body;
        EXPECT_NE(reply.head.find("application/json"), std::string::npos) << reply.head;
        return e;
    }
    static void expect_good_request_served(const std::string& after) {
        httplib::Client c("127.0.0.1", server_->port);
        auto r = c.Post(kChat, R"({"messages":[{"role":"user","content":"hi"}],"max_tokens":2})",
                        "application/json");
        ASSERT_TRUE(r) << "after " << after;
        EXPECT_EQ(r->status, 200) << "after " << after << ": " << r->body;
    }

    static testing::TempDir* dir_;
    static testing::TestServer* server_;
};
testing::TempDir* MalformedRequestTest::dir_ = nullptr;
testing::TestServer* MalformedRequestTest::server_ = nullptr;

TEST_F(MalformedRequestTest, EachBadBodyGetsItsErrorNamingTheCulprit) {
    const std::vector<Case> all = cases();
    ASSERT_GE(all.size(), 40u);
    for (const Case& c : all) {
        const testing::RawReply reply = raw_http(server_->port, post_request(c.path, c.body));
        EXPECT_EQ(reply.status, c.status) << c.what << ": " << reply.body;
        const json e = error_of(reply);
        const std::string named = e.value("param", json()).is_string()
                                      ? e["param"].get<std::string>()
                                      : e.value("message", std::string());
        EXPECT_NE(named.find(c.names), std::string::npos)
            << c.what << ": wanted '" << c.names << "' in " << e.dump();
    }
    expect_good_request_served("the bad bodies");
}

// OpenAI refuses a parameter it does not know, so a misspelt one is never silently ignored; the
// fields it defines but tandem does not use (user, metadata, store) are accepted.
TEST_F(MalformedRequestTest, UnknownFieldsAreRefusedAndOpenAisOwnAccepted) {
    httplib::Client c("127.0.0.1", server_->port);
    auto ok = c.Post(kChat, chat_with(R"("max_tokens":2,"user":"u1","metadata":{"a":"b"},"store":false)"),
                     "application/json");
    ASSERT_TRUE(ok);
    EXPECT_EQ(ok->status, 200) << ok->body;
    for (const char* field : {R"("max_tokns":2)", R"("x_y":[1])", R"("prompt":"hi")"}) {
        auto r = c.Post(kChat, chat_with(field), "application/json");
        ASSERT_TRUE(r);
        EXPECT_EQ(r->status, 400) << field;
        EXPECT_NE(r->body.find("Unrecognized request argument"), std::string::npos) << r->body;
    }
    auto r = c.Post(kCompletions, R"({"prompt":"hi","max_tokens":2,"messages":[]})", "application/json");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 400) << r->body;
    EXPECT_NE(r->body.find("\"param\":\"messages\""), std::string::npos) << r->body;
    expect_good_request_served("unknown fields");
}

TEST_F(MalformedRequestTest, TenMegabyteBodyIs413) {
    const std::string body = R"({"prompt":")" + std::string(10 << 20, 'a') + R"("})";
    const testing::RawReply reply = raw_http(server_->port, post_request(kCompletions, body));
    EXPECT_EQ(reply.status, 413) << reply.head;
    EXPECT_EQ(error_of(reply)["code"], "request_too_large");
    expect_good_request_served("a 10 MB body");
}

// Broken HTTP gets an error object too (a negative Content-Length reads as a huge one: 413).
TEST_F(MalformedRequestTest, BrokenHttpGetsItsError) {
    const std::pair<std::string, int> requests[] = {
        {"HELLO\r\n\r\n", 400},
        {"POST /v1/completions HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
         "Connection: close\r\n\r\nzz\r\nabc\r\n0\r\n\r\n",
         400},
        {"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n"
         "Connection: close\r\n\r\n",
         413}};
    for (const auto& [request, status] : requests) {
        // Read up to the error object's end: "HELLO" leaves the connection open.
        const testing::RawReply reply = raw_http(server_->port, request, 5, 0, "}}");
        EXPECT_EQ(reply.status, status) << request << "\n" << reply.head;
        error_of(reply);
    }
    expect_good_request_served("broken HTTP");
}

// A body promised by Content-Length and sent a byte every 0.6 s: the read timeout (0.3 s) cuts
// it with a 400 rather than holding a thread for as long as the client likes.
TEST_F(MalformedRequestTest, SlowBodyIsCutByTheReadTimeout) {
    const std::string body = chat_with(R"("max_tokens":2)");
    const std::string request = post_request(kChat, body);
    const size_t head = request.find("\r\n\r\n") + 4;
    // The head and one byte of the body at once, then a byte every 0.6 s.
    const testing::RawReply slow = raw_http(server_->port, request, 5, 600, "", head + 1);
    EXPECT_EQ(slow.status, 400) << slow.head;
    error_of(slow);
    EXPECT_LT(slow.seconds, 3.0);
    expect_good_request_served("a slow body");
}

// Headers that never end: the connection is closed once a read waits past the timeout.
TEST_F(MalformedRequestTest, SlowHeadersAreCutByTheReadTimeout) {
    const testing::RawReply reply =
        raw_http(server_->port, "GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: abcdefghij", 5, 600);
    EXPECT_EQ(reply.status, 0) << reply.head;
    EXPECT_LT(reply.seconds, 3.0);
    expect_good_request_served("slow headers");
}

}  // namespace
}  // namespace tandem::serve

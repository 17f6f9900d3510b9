// The API's answers against hand-written JSON: whole completions and chat completions, streamed
// chunks with their SSE framing, the usage chunk, both shapes of log-probabilities (with a token
// that ends inside a UTF-8 character), errors and the model list. Comparisons are on the exact
// text, key order included.
#include "serve/openai_response.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <set>

namespace tandem::serve {
namespace {

const ResponseMeta kMeta{"cmpl-1", 1700000000, "qwen3-0.6b"};

// Two tokens: "é" arrives as its two bytes, the first of which alone is not UTF-8.
std::vector<TokenLogprobs> split_e_acute() {
    return {TokenLogprobs{"\xC3", -0.25f, {{"\xC3", -0.25f}, {"a", -2.5f}}},
            TokenLogprobs{"\xA9!", -0.1f, {{"\xA9!", -0.1f}}}};
}

TEST(OpenAiResponse, CompletionJson) {
    const std::vector<Choice> choices = {{0, "Paris.", FinishReason::Stop, std::nullopt},
                                         {1, "Lyon, then", FinishReason::Length, std::nullopt}};
    EXPECT_EQ(completion_json(kMeta, choices, {5, 7}),
              R"({"id":"cmpl-1","object":"text_completion","created":1700000000,)"
              R"("model":"qwen3-0.6b","choices":[)"
              R"({"text":"Paris.","index":0,"logprobs":null,"finish_reason":"stop"},)"
              R"({"text":"Lyon, then","index":1,"logprobs":null,"finish_reason":"length"}],)"
              R"("usage":{"prompt_tokens":5,"completion_tokens":7,"total_tokens":12}})");
}

TEST(OpenAiResponse, ChatCompletionJson) {
    const std::vector<Choice> choices = {{0, "Hi \"you\"\n", FinishReason::Stop, std::nullopt}};
    EXPECT_EQ(chat_completion_json({"chatcmpl-9", 1, "m"}, choices, {10, 3}),
              R"({"id":"chatcmpl-9","object":"chat.completion","created":1,"model":"m",)"
              R"("choices":[{"index":0,"message":{"role":"assistant","content":"Hi \"you\"\n"},)"
              R"("logprobs":null,"finish_reason":"stop"}],)"
              R"("usage":{"prompt_tokens":10,"completion_tokens":3,"total_tokens":13}})");
}

TEST(OpenAiResponse, CompletionLogprobsShape) {
    const std::vector<Choice> choices = {{0, "\xC3\xA9!", FinishReason::Stop, split_e_acute()}};
    const nlohmann::json j = nlohmann::json::parse(completion_json(kMeta, choices, {1, 2}));
    EXPECT_EQ(j["choices"][0]["logprobs"], nlohmann::json::parse(R"({
        "tokens": ["\ufffd", "\ufffd!"],
        "token_logprobs": [-0.25, -0.1],
        "top_logprobs": [{"\ufffd": -0.25, "a": -2.5}, {"\ufffd!": -0.1}],
        "text_offset": [0, 1]})"));
    // The shortest decimal of each float, not its double expansion.
    EXPECT_NE(completion_json(kMeta, choices, {1, 2}).find("[-0.25,-0.1]"), std::string::npos);
}

TEST(OpenAiResponse, CompletionTextOffsetsCountCharacters) {
    std::vector<TokenLogprobs> tokens = {{"ab", -1, {}}, {"\xC3\xA9", -1, {}}, {"c", -1, {}}};
    const std::vector<Choice> choices = {{0,
                                          "ab\xC3\xA9"
                                          "c",
                                          FinishReason::Stop, tokens}};
    const nlohmann::json j = nlohmann::json::parse(completion_json(kMeta, choices, {1, 3}));
    EXPECT_EQ(j["choices"][0]["logprobs"]["text_offset"], nlohmann::json::parse("[0, 2, 3]"));
}

TEST(OpenAiResponse, ChatLogprobsCarryExactBytes) {
    const std::vector<Choice> choices = {{0, "\xC3\xA9!", FinishReason::Stop, split_e_acute()}};
    const nlohmann::json j = nlohmann::json::parse(chat_completion_json(kMeta, choices, {1, 2}));
    EXPECT_EQ(j["choices"][0]["logprobs"], nlohmann::json::parse(R"({"content": [
        {"token": "\ufffd", "logprob": -0.25, "bytes": [195],
         "top_logprobs": [{"token": "\ufffd", "logprob": -0.25, "bytes": [195]},
                          {"token": "a", "logprob": -2.5, "bytes": [97]}]},
        {"token": "\ufffd!", "logprob": -0.1, "bytes": [169, 33],
         "top_logprobs": [{"token": "\ufffd!", "logprob": -0.1, "bytes": [169, 33]}]}]})"));
}

TEST(OpenAiResponse, ZeroProbabilityIsOpenAisMinus9999) {
    const std::vector<TokenLogprobs> tokens = {{"x", -INFINITY, {}}};
    const std::vector<Choice> choices = {{0, "x", FinishReason::Stop, tokens}};
    EXPECT_NE(chat_completion_json(kMeta, choices, {1, 1}).find(R"("logprob":-9999.0)"),
              std::string::npos);
}

TEST(OpenAiResponse, ChatStreamChunks) {
    const ResponseMeta meta{"chatcmpl-2", 5, "m"};
    ChoiceDelta first{0, "", std::nullopt, std::nullopt, true};
    EXPECT_EQ(chat_chunk_event(meta, first, false),
              "data: "
              R"({"id":"chatcmpl-2","object":"chat.completion.chunk","created":5,"model":"m",)"
              R"("choices":[{"index":0,"delta":{"role":"assistant","content":""},)"
              R"("logprobs":null,"finish_reason":null}]})"
              "\n\n");
    ChoiceDelta middle{1, "Hel", std::nullopt, std::nullopt, false};
    EXPECT_EQ(chat_chunk_event(meta, middle, true),
              "data: "
              R"({"id":"chatcmpl-2","object":"chat.completion.chunk","created":5,"model":"m",)"
              R"("choices":[{"index":1,"delta":{"content":"Hel"},)"
              R"("logprobs":null,"finish_reason":null}],"usage":null})"
              "\n\n");
    ChoiceDelta last{0, "", FinishReason::Length, std::nullopt, false};
    EXPECT_EQ(chat_chunk_event(meta, last, false),
              "data: "
              R"({"id":"chatcmpl-2","object":"chat.completion.chunk","created":5,"model":"m",)"
              R"("choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"length"}]})"
              "\n\n");
    EXPECT_EQ(chat_usage_event(meta, {4, 6}),
              "data: "
              R"({"id":"chatcmpl-2","object":"chat.completion.chunk","created":5,"model":"m",)"
              R"("choices":[],"usage":{"prompt_tokens":4,"completion_tokens":6,"total_tokens":10}})"
              "\n\n");
    EXPECT_EQ(done_event(), "data: [DONE]\n\n");
}

TEST(OpenAiResponse, ChatStreamChunkWithLogprobs) {
    ChoiceDelta d{0, "a", FinishReason::Stop, std::vector<TokenLogprobs>{{"a", -0.5f, {}}}, false};
    EXPECT_NE(chat_chunk_event(kMeta, d, false)
                  .find(R"("delta":{"content":"a"},"logprobs":{"content":[{"token":"a",)"
                        R"("logprob":-0.5,"bytes":[97],"top_logprobs":[]}]},)"
                        R"("finish_reason":"stop")"),
              std::string::npos);
}

TEST(OpenAiResponse, CompletionStreamChunks) {
    ChoiceDelta d{2, " world", std::nullopt, std::nullopt, false};
    EXPECT_EQ(completion_chunk_event(kMeta, d, false),
              "data: "
              R"({"id":"cmpl-1","object":"text_completion","created":1700000000,)"
              R"("model":"qwen3-0.6b","choices":[{"text":" world","index":2,"logprobs":null,)"
              R"("finish_reason":null}]})"
              "\n\n");
    d.text = "";
    d.finish_reason = FinishReason::Stop;
    EXPECT_EQ(completion_chunk_event(kMeta, d, true),
              "data: "
              R"({"id":"cmpl-1","object":"text_completion","created":1700000000,)"
              R"("model":"qwen3-0.6b","choices":[{"text":"","index":2,"logprobs":null,)"
              R"("finish_reason":"stop"}],"usage":null})"
              "\n\n");
    EXPECT_EQ(completion_usage_event(kMeta, {3, 0}),
              "data: "
              R"({"id":"cmpl-1","object":"text_completion","created":1700000000,)"
              R"("model":"qwen3-0.6b","choices":[],)"
              R"("usage":{"prompt_tokens":3,"completion_tokens":0,"total_tokens":3}})"
              "\n\n");
}

TEST(OpenAiResponse, StreamedTextEndingInsideACharacterStaysValidJson) {
    ChoiceDelta d{0, "caf\xC3", std::nullopt, std::nullopt, false};
    const std::string e = chat_chunk_event(kMeta, d, false);
    EXPECT_NE(e.find("\"content\":\"caf\xEF\xBF\xBD\""), std::string::npos) << e;
}

TEST(OpenAiResponse, ErrorObjects) {
    EXPECT_EQ(error_json(invalid_request("temperature", "temperature is too hot")),
              R"({"error":{"message":"temperature is too hot","type":"invalid_request_error",)"
              R"("param":"temperature","code":null}})");
    EXPECT_EQ(error_json(model_not_found("gpt-4")),
              R"x({"error":{"message":"The model 'gpt-4' does not exist on this server (GET )x"
              R"x(/v1/models lists the one it serves)","type":"invalid_request_error",)x"
              R"("param":"model","code":"model_not_found"}})");
    const ApiError e = invalid_api_key();
    EXPECT_EQ(e.status, 401);
    EXPECT_EQ(error_event(e).substr(0, 16), R"(data: {"error":{)");
    EXPECT_EQ(error_event(e).substr(error_event(e).size() - 2), "\n\n");
    // A message quoting bytes of a bad request stays JSON.
    const std::string bad = error_json(invalid_request("", "last read: '\xFF'"));
    EXPECT_TRUE(nlohmann::json::accept(bad)) << bad;
    EXPECT_EQ(queue_full(2).status, 429);
    EXPECT_EQ(body_too_large(11, 10).status, 413);
    EXPECT_EQ(unknown_url("GET", "/v2/x").status, 404);
    EXPECT_NE(std::string(unknown_url("GET", "/v2/x").what()).find("GET /v2/x"), std::string::npos);
}

TEST(OpenAiResponse, Models) {
    const std::vector<ModelInfo> models = {{"qwen3-0.6b", 1700000000, "tandem"}};
    EXPECT_EQ(models_json(models),
              R"({"object":"list","data":[{"id":"qwen3-0.6b","object":"model",)"
              R"("created":1700000000,"owned_by":"tandem"}]})");
}

TEST(OpenAiResponse, IdsAreDistinctAndShaped) {
    std::set<std::string> ids;
    for (uint64_t i = 0; i < 1000; ++i) ids.insert(response_id("chatcmpl", i));
    EXPECT_EQ(ids.size(), 1000u);
    const std::string id = response_id("cmpl", 7);
    EXPECT_EQ(id.size(), std::string("cmpl-").size() + 24);
    EXPECT_EQ(id.substr(0, 5), "cmpl-");
    EXPECT_EQ(id.find_first_not_of("0123456789abcdef", 5), std::string::npos);
}

}  // namespace
}  // namespace tandem::serve

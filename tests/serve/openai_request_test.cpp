// Request bodies of /v1/completions and /v1/chat/completions: what valid ones parse to (every
// field into GenerationOptions and SamplingParams), and a table of malformed bodies, each refused
// with its status, type, param and a message naming the culprit.
#include "serve/openai_request.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace tandem::serve {
namespace {

RequestLimits limits() {
    RequestLimits l;
    l.max_choices = 8;
    l.vocab_size = 1000;
    return l;
}

TEST(OpenAiRequest, ChatParsesEveryField) {
    const ChatRequest r = parse_chat_request(R"({
        "model": "qwen", "n": 2, "stream": true, "stream_options": {"include_usage": true},
        "max_completion_tokens": 50, "stop": ["\n\n", "END"], "temperature": 0.5, "top_p": 0.9,
        "seed": -1, "presence_penalty": 1.5, "frequency_penalty": -0.5,
        "logit_bias": {"12": -100, "999": 2.5}, "logprobs": true, "top_logprobs": 3,
        "top_k": 40, "min_p": 0.05, "repeat_penalty": 1.1, "user": "someone",
        "metadata": {"unknown": ["fields", "are", "ignored"]},
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": [{"type": "text", "text": "Hi "}, {"type": "text", "text": "there"}]},
            {"role": "assistant", "content": "Hello.", "name": "bot"},
            {"role": "developer", "content": ""}
        ]})",
                                             limits());
    const GenerationOptions& o = r.options;
    EXPECT_EQ(o.model, "qwen");
    EXPECT_EQ(o.n, 2);
    EXPECT_TRUE(o.stream);
    EXPECT_TRUE(o.include_usage);
    EXPECT_EQ(o.max_tokens, 50);
    EXPECT_EQ(o.max_tokens_param, "max_completion_tokens");
    EXPECT_EQ(o.stop, (std::vector<std::string>{"\n\n", "END"}));
    EXPECT_TRUE(o.has_seed);
    EXPECT_EQ(o.sampling.seed, UINT64_MAX);  // -1 keeps its bits
    EXPECT_FLOAT_EQ(o.sampling.temperature, 0.5f);
    EXPECT_FLOAT_EQ(o.sampling.top_p, 0.9f);
    EXPECT_EQ(o.sampling.top_k, 40);
    EXPECT_FLOAT_EQ(o.sampling.min_p, 0.05f);
    EXPECT_FLOAT_EQ(o.sampling.repetition_penalty, 1.1f);
    EXPECT_FLOAT_EQ(o.sampling.presence_penalty, 1.5f);
    EXPECT_FLOAT_EQ(o.sampling.frequency_penalty, -0.5f);
    using Bias = std::vector<std::pair<int32_t, float>>;
    EXPECT_EQ(o.sampling.logit_bias, (Bias{{12, -100.0f}, {999, 2.5f}}));
    EXPECT_TRUE(o.sampling.logprobs);
    EXPECT_EQ(o.sampling.top_logprobs, 3);
    ASSERT_EQ(r.messages.size(), 4u);
    EXPECT_EQ(r.messages[0].role, Role::System);
    EXPECT_EQ(r.messages[0].content, "Be brief.");
    EXPECT_EQ(r.messages[1].role, Role::User);
    EXPECT_EQ(r.messages[1].content, "Hi there");
    EXPECT_EQ(r.messages[2].role, Role::Assistant);
    EXPECT_EQ(r.messages[3].role, Role::System);
    EXPECT_EQ(r.messages[3].content, "");
}

TEST(OpenAiRequest, ChatDefaultsAreOpenAis) {
    const ChatRequest r =
        parse_chat_request(R"({"messages": [{"role": "user", "content": "x"}]})", limits());
    const GenerationOptions& o = r.options;
    EXPECT_EQ(o.model, "");
    EXPECT_EQ(o.n, 1);
    EXPECT_FALSE(o.stream);
    EXPECT_FALSE(o.include_usage);
    EXPECT_FALSE(o.max_tokens.has_value());
    EXPECT_TRUE(o.stop.empty());
    EXPECT_FALSE(o.has_seed);
    EXPECT_FLOAT_EQ(o.sampling.temperature, 1.0f);
    EXPECT_FLOAT_EQ(o.sampling.top_p, 1.0f);
    EXPECT_EQ(o.sampling.top_k, 0);
    EXPECT_FLOAT_EQ(o.sampling.repetition_penalty, 1.0f);
    EXPECT_FALSE(o.sampling.logprobs);
    EXPECT_EQ(o.sampling.top_logprobs, 0);
}

TEST(OpenAiRequest, ChatTemplateKwargs) {
    const std::string msgs = R"("messages": [{"role": "user", "content": "x"}])";
    EXPECT_TRUE(parse_chat_request("{" + msgs + "}", limits()).enable_thinking);
    EXPECT_FALSE(
        parse_chat_request(
            "{" + msgs + R"(, "chat_template_kwargs": {"enable_thinking": false, "x": 1}})",
            limits())
            .enable_thinking);
}

TEST(OpenAiRequest, NullCountsAsAbsent) {
    const ChatRequest r = parse_chat_request(
        R"({"messages": [{"role": "user", "content": "x"}], "temperature": null, "stop": null,
            "n": null, "logit_bias": null, "seed": null, "max_tokens": null})",
        limits());
    EXPECT_EQ(r.options.n, 1);
    EXPECT_FLOAT_EQ(r.options.sampling.temperature, 1.0f);
    EXPECT_FALSE(r.options.has_seed);
    EXPECT_FALSE(r.options.max_tokens.has_value());
}

TEST(OpenAiRequest, CompletionPromptForms) {
    auto prompts = [](const std::string& p) {
        return parse_completion_request(R"({"prompt": )" + p + "}", limits()).prompts;
    };
    std::vector<Prompt> p = prompts(R"("Once upon")");
    ASSERT_EQ(p.size(), 1u);
    EXPECT_FALSE(p[0].is_tokens);
    EXPECT_EQ(p[0].text, "Once upon");

    p = prompts(R"(["a", "b", ""])");
    ASSERT_EQ(p.size(), 3u);
    EXPECT_EQ(p[1].text, "b");
    EXPECT_EQ(p[2].text, "");

    p = prompts("[1, 2, 999]");
    ASSERT_EQ(p.size(), 1u);
    EXPECT_TRUE(p[0].is_tokens);
    EXPECT_EQ(p[0].tokens, (std::vector<int32_t>{1, 2, 999}));

    p = prompts("[[5], [6, 7]]");
    ASSERT_EQ(p.size(), 2u);
    EXPECT_EQ(p[1].tokens, (std::vector<int32_t>{6, 7}));
}

TEST(OpenAiRequest, CompletionDefaultsAndLogprobs) {
    CompletionRequest r = parse_completion_request(R"({"prompt": "x"})", limits());
    EXPECT_EQ(r.options.max_tokens, 16);  // OpenAI's default for completions
    EXPECT_FALSE(r.options.sampling.logprobs);

    r = parse_completion_request(R"({"prompt": "x", "logprobs": 0, "best_of": 1, "echo": false,
                                     "suffix": "", "max_tokens": 3, "stop": "\n"})",
                                 limits());
    EXPECT_TRUE(r.options.sampling.logprobs);  // 0: the chosen token's only
    EXPECT_EQ(r.options.sampling.top_logprobs, 0);
    EXPECT_EQ(r.options.max_tokens, 3);
    EXPECT_EQ(r.options.stop, std::vector<std::string>{"\n"});

    r = parse_completion_request(R"({"prompt": "x", "logprobs": 5, "top_k": -1})", limits());
    EXPECT_EQ(r.options.sampling.top_logprobs, 5);
    EXPECT_EQ(r.options.sampling.top_k, 0);  // -1: no limit, as vLLM
}

TEST(OpenAiRequest, IgnoreEosIsReadAndUnknownFieldsAreRefusedByName) {
    EXPECT_TRUE(parse_completion_request(R"({"prompt": "x", "ignore_eos": true})", limits()).options.ignore_eos);
    EXPECT_FALSE(parse_completion_request(R"({"prompt": "x"})", limits()).options.ignore_eos);
    try {
        parse_completion_request(R"({"prompt": "x", "temprature": 0})", limits());
        FAIL() << "a misspelt field was accepted";
    } catch (const ApiError& e) {
        EXPECT_EQ(e.status, 400);
        EXPECT_EQ(e.param, "temprature");
    }
    // A field of the other endpoint is unknown here.
    EXPECT_THROW(parse_chat_request(R"({"messages": [{"role": "user", "content": "x"}], "echo": true})",
                                    limits()),
                 ApiError);
}

TEST(OpenAiRequest, StopStringAtTheLengthLimitIsAccepted) {
    const std::string stop(kMaxStopBytes, 's');
    EXPECT_EQ(parse_completion_request(R"({"prompt": "x", "stop": [")" + stop + "\"]}", limits())
                  .options.stop,
              std::vector<std::string>{stop});
}

TEST(OpenAiRequest, UnknownVocabularyBoundsIdsByInt32) {
    const RequestLimits open{4, 0};
    EXPECT_EQ(parse_completion_request(R"({"prompt": [2147483647]})", open).prompts[0].tokens[0],
              INT32_MAX);
    EXPECT_THROW(parse_completion_request(R"({"prompt": [2147483648]})", open), ApiError);
}

TEST(OpenAiRequest, BodyAtTheLimitIsParsedAndOneByteMoreIs413) {
    std::string body = R"({"prompt": "x", "user": ")";
    body += std::string(kMaxBodyBytes - body.size() - 2, 'a') + "\"}";
    ASSERT_EQ(body.size(), kMaxBodyBytes);
    EXPECT_EQ(parse_completion_request(body, limits()).prompts[0].text, "x");
    body.insert(body.size() - 2, "a");
    try {
        parse_completion_request(body, limits());
        FAIL() << "no error";
    } catch (const ApiError& e) {
        EXPECT_EQ(e.status, 413);
        EXPECT_EQ(e.code, "request_too_large");
        EXPECT_NE(std::string(e.what()).find(std::to_string(kMaxBodyBytes + 1)), std::string::npos);
    }
}

TEST(OpenAiRequest, FitToContext) {
    GenerationOptions o;
    EXPECT_EQ(fit_to_context(10, o, 100, "prompt"), 90);  // absent: the room left
    o.max_tokens = 90;
    EXPECT_EQ(fit_to_context(10, o, 100, "prompt"), 90);
    o.max_tokens = 91;
    o.max_tokens_param = "max_completion_tokens";
    try {
        fit_to_context(10, o, 100, "messages");
        FAIL() << "no error";
    } catch (const ApiError& e) {
        EXPECT_EQ(e.status, 400);
        EXPECT_EQ(e.param, "max_completion_tokens");
        EXPECT_EQ(e.code, "context_length_exceeded");
        EXPECT_NE(std::string(e.what()).find("at most 90 fit"), std::string::npos) << e.what();
    }
    try {
        fit_to_context(100, o, 100, "messages");
        FAIL() << "no error";
    } catch (const ApiError& e) {
        EXPECT_EQ(e.param, "messages");
    }
    try {
        fit_to_context(0, o, 100, "prompt");
        FAIL() << "no error";
    } catch (const ApiError& e) {
        EXPECT_EQ(e.param, "prompt");
        EXPECT_NE(std::string(e.what()).find("empty"), std::string::npos);
    }
}

// ---- Malformed bodies -------------------------------------------------------------------------

struct BadBody {
    const char* name;
    bool is_chat;
    std::string body;
    const char* param;    // expected ApiError::param
    const char* message;  // a fragment the message must contain
    int status = 400;
};

const std::string kMsgs = R"("messages": [{"role": "user", "content": "hi"}])";

std::string chat(const std::string& extra) {
    return "{" + kMsgs + ", " + extra + "}";
}
std::string completion(const std::string& extra) {
    return R"({"prompt": "hi", )" + extra + "}";
}

std::vector<BadBody> bad_bodies() {
    return {
        {"EmptyBody", true, "", "", "not valid JSON"},
        {"TruncatedJson", true, R"({"messages": [)", "", "not valid JSON"},
        {"TrailingGarbage", true, chat(R"("n": 1)") + "x", "", "not valid JSON"},
        {"NaNLiteral", true, chat(R"("temperature": NaN)"), "", "not valid JSON"},
        {"InfinityLiteral", true, chat(R"("temperature": Infinity)"), "", "not valid JSON"},
        {"NumberOverflowingDouble", true, chat(R"("temperature": 1e999)"), "", "not valid JSON"},
        {"SingleQuotes", true, "{'messages': []}", "", "not valid JSON"},
        {"InvalidUtf8InContent", true,
         "{\"messages\": [{\"role\": \"user\", \"content\": \"a\xFF\xFE\"}]}", "",
         "not valid JSON"},
        {"TruncatedUtf8Sequence", false, "{\"prompt\": \"caf\xC3\"}", "", "not valid JSON"},
        {"OverlongUtf8", false, "{\"prompt\": \"\xC0\xAF\"}", "", "not valid JSON"},
        {"LoneSurrogateEscape", false, R"({"prompt": "\ud800"})", "", "not valid JSON"},
        {"InvalidUtf8InKey", true, chat("\"te\xFFmp\": 1"), "", "not valid JSON"},
        {"DeepNesting", false, completion(R"("x": )" + std::string(40, '[') + std::string(40, ']')),
         "", "deeper than"},
        {"TopLevelArray", true, "[1, 2]", "", "must be a JSON object"},
        {"TopLevelString", true, R"("hello")", "", "must be a JSON object"},
        {"MessagesMissing", true, R"({"model": "m"})", "messages", "messages is missing"},
        {"MessagesEmpty", true, R"({"messages": []})", "messages", "non-empty array"},
        {"MessagesNotArray", true, R"({"messages": "hi"})", "messages", "a string (\"hi\")"},
        {"MessageNotObject", true, R"({"messages": [42]})", "messages[0]", "an object"},
        {"RoleMissing", true, R"({"messages": [{"content": "x"}]})", "messages[0].role",
         "role is missing"},
        {"UnknownRole", true, R"({"messages": [{"role": "wizard", "content": "x"}]})",
         "messages[0].role", "\"wizard\""},
        {"RoleNotString", true, R"({"messages": [{"role": 1, "content": "x"}]})",
         "messages[0].role", "a number"},
        {"ToolRole", true, R"({"messages": [{"role": "tool", "content": "x"}]})",
         "messages[0].role", "no tool calling"},
        {"ContentMissing", true,
         R"({"messages": [{"role": "user", "content": "a"}, {"role": "user"}]})",
         "messages[1].content", "content is missing"},
        {"ContentNumber", true, R"({"messages": [{"role": "user", "content": 5}]})",
         "messages[0].content", "a string or an array of text parts"},
        {"ImagePart", true,
         R"({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}]})",
         "messages[0].content[0].type", "\"image_url\""},
        {"TextPartWithoutText", true,
         R"({"messages": [{"role": "user", "content": [{"type": "text"}]}]})",
         "messages[0].content[0].text", "text is missing"},
        {"TemperatureString", true, chat(R"("temperature": "0.7")"), "temperature",
         "a string (\"0.7\") but must be a number in [0, 2]"},
        {"TemperatureTooHigh", true, chat(R"("temperature": 2.5)"), "temperature", "[0, 2]"},
        {"TemperatureNegative", true, chat(R"("temperature": -0.1)"), "temperature", "[0, 2]"},
        {"TemperatureBool", true, chat(R"("temperature": true)"), "temperature", "a boolean"},
        {"TopPZero", true, chat(R"("top_p": 0)"), "top_p", "(0, 1]"},
        {"TopPAboveOne", true, chat(R"("top_p": 1.01)"), "top_p", "(0, 1]"},
        {"NZero", true, chat(R"("n": 0)"), "n", "an integer in [1, 8]"},
        {"NNegative", false, completion(R"("n": -3)"), "n", "an integer in [1, 8]"},
        {"NAboveCap", true, chat(R"("n": 9)"), "n", "[1, 8]"},
        {"NHuge", true, chat(R"("n": 18446744073709551615)"), "n", "[1, 8]"},
        {"NBeyondUint64", true, chat(R"("n": 1000000000000000000000)"), "n", "[1, 8]"},
        {"NFloat", true, chat(R"("n": 2.0)"), "n", "an integer"},
        {"PromptsTimesNAboveCap", false, R"({"prompt": ["a", "b", "c"], "n": 3})", "n",
         "3 prompts"},
        {"MaxTokensZero", true, chat(R"("max_tokens": 0)"), "max_tokens", "an integer in [1, "},
        {"MaxTokensNegative", false, completion(R"("max_tokens": -5)"), "max_tokens",
         "an integer in [1, "},
        {"MaxTokensHuge", false, completion(R"("max_tokens": 9223372036854775807)"), "max_tokens",
         "an integer in [1, "},
        {"MaxTokensDisagree", true, chat(R"("max_tokens": 5, "max_completion_tokens": 6)"),
         "max_tokens", "disagree"},
        {"StreamString", true, chat(R"("stream": "yes")"), "stream", "true or false"},
        {"StreamOptionsWithoutStream", true, chat(R"("stream_options": {"include_usage": true})"),
         "stream_options", "only allowed when stream is true"},
        {"IncludeUsageNumber", true,
         chat(R"("stream": true, "stream_options": {"include_usage": 1})"),
         "stream_options.include_usage", "true or false"},
        {"FiveStopStrings", true, chat(R"("stop": ["a", "b", "c", "d", "e"])"), "stop",
         "at most 4"},
        {"EmptyStopString", true, chat(R"("stop": "")"), "stop", "non-empty"},
        {"StopArrayWithNumber", true, chat(R"("stop": ["a", 3])"), "stop[1]", "a number"},
        {"StopObject", false, completion(R"("stop": {"a": 1})"), "stop", "an object"},
        {"StopTooLong", false, completion(R"("stop": ")" + std::string(257, 'x') + "\""), "stop",
         "at most 256 bytes"},
        {"StopArrayEntryTooLong", true, chat(R"("stop": ["a", ")" + std::string(300, 'y') + "\"]"),
         "stop[1]", "at most 256 bytes"},
        {"PresencePenaltyHigh", true, chat(R"("presence_penalty": 2.01)"), "presence_penalty",
         "[-2, 2]"},
        {"FrequencyPenaltyLow", false, completion(R"("frequency_penalty": -3)"),
         "frequency_penalty", "[-2, 2]"},
        {"LogitBiasArray", true, chat(R"("logit_bias": [1, 2])"), "logit_bias",
         "an object of token ids"},
        {"LogitBiasWordKey", true, chat(R"("logit_bias": {"hello": 1})"), "logit_bias",
         "\"hello\""},
        {"LogitBiasNegativeKey", true, chat(R"("logit_bias": {"-5": 1})"), "logit_bias", "\"-5\""},
        {"LogitBiasIdPastVocab", true, chat(R"("logit_bias": {"1000": 1})"), "logit_bias",
         "[0, 999]"},
        {"LogitBiasHugeKey", true, chat(R"("logit_bias": {"99999999999999999999": 1})"),
         "logit_bias", "token ids"},
        {"LogitBiasValueTooBig", true, chat(R"("logit_bias": {"5": 101})"), "logit_bias[\"5\"]",
         "[-100, 100]"},
        {"LogitBiasValueString", true, chat(R"("logit_bias": {"5": "1"})"), "logit_bias[\"5\"]",
         "a string"},
        {"ChatLogprobsInteger", true, chat(R"("logprobs": 3)"), "logprobs", "true or false"},
        {"TopLogprobsWithoutLogprobs", true, chat(R"("top_logprobs": 2)"), "top_logprobs",
         "needs logprobs"},
        {"TopLogprobsAbove20", true, chat(R"("logprobs": true, "top_logprobs": 21)"),
         "top_logprobs", "[0, 20]"},
        {"CompletionLogprobsAbove5", false, completion(R"("logprobs": 6)"), "logprobs", "[0, 5]"},
        {"CompletionLogprobsBool", false, completion(R"("logprobs": true)"), "logprobs",
         "an integer in [0, 5]"},
        {"TopKTooNegative", true, chat(R"("top_k": -2)"), "top_k", "[-1, "},
        {"MinPAboveOne", true, chat(R"("min_p": 1.5)"), "min_p", "[0, 1]"},
        {"RepeatPenaltyZero", true, chat(R"("repeat_penalty": 0)"), "repeat_penalty", "(0, 100]"},
        {"SeedFloat", true, chat(R"("seed": 1.5)"), "seed", "an integer"},
        {"SeedString", false, completion(R"("seed": "42")"), "seed", "a string"},
        {"ModelNumber", true, chat(R"("model": 7)"), "model", "a string"},
        {"PromptMissing", false, R"({"max_tokens": 5})", "prompt", "prompt is missing"},
        {"PromptEmptyArray", false, R"({"prompt": []})", "prompt", "an array"},
        {"PromptNumber", false, R"({"prompt": 5})", "prompt", "a number"},
        {"PromptMixedArray", false, R"({"prompt": ["a", 5]})", "prompt[1]", "as prompt[0] is"},
        {"PromptTokenPastVocab", false, R"({"prompt": [1, 1000]})", "prompt[1]", "[0, 999]"},
        {"PromptNegativeToken", false, R"({"prompt": [[1], [-1]]})", "prompt[1][0]", "[0, 999]"},
        {"PromptEmptyTokenArray", false, R"({"prompt": [[1], []]})", "prompt[1]",
         "non-empty array of token ids"},
        {"PromptArrayOfObjects", false, R"({"prompt": [{}]})", "prompt[0]", "an object"},
        {"Echo", false, completion(R"("echo": true)"), "echo", "not supported"},
        {"BestOf", false, completion(R"("best_of": 3)"), "best_of", "not supported"},
        {"Suffix", false, completion(R"("suffix": "end")"), "suffix", "not supported"},
        {"Tools", true, chat(R"("tools": [{"type": "function"}])"), "tools", "no tool calling"},
        {"ToolCallsInHistory", true,
         R"({"messages": [{"role": "assistant", "content": null, "tool_calls": [{}]}]})",
         "messages[0].tool_calls", "no tool calling"},
        {"ChatTemplateKwargsArray", true, chat(R"("chat_template_kwargs": [1])"),
         "chat_template_kwargs", "an object"},
        {"EnableThinkingString", true, chat(R"("chat_template_kwargs": {"enable_thinking": "no"})"),
         "chat_template_kwargs.enable_thinking", "true or false"},
        {"JsonResponseFormat", true, chat(R"("response_format": {"type": "json_object"})"),
         "response_format", "only {\"type\": \"text\"}"},
    };
}

class MalformedRequest : public ::testing::TestWithParam<BadBody> {};

TEST_P(MalformedRequest, IsRefusedNamingTheField) {
    const BadBody& b = GetParam();
    try {
        if (b.is_chat)
            parse_chat_request(b.body, limits());
        else
            parse_completion_request(b.body, limits());
        FAIL() << "accepted: " << b.body;
    } catch (const ApiError& e) {
        EXPECT_EQ(e.status, b.status);
        EXPECT_EQ(e.type, "invalid_request_error");
        EXPECT_EQ(e.param, b.param) << e.what();
        EXPECT_NE(std::string(e.what()).find(b.message), std::string::npos)
            << "message: " << e.what() << "\nexpected to contain: " << b.message;
    }
}

INSTANTIATE_TEST_SUITE_P(Bodies, MalformedRequest, ::testing::ValuesIn(bad_bodies()),
                         [](const auto& info) { return std::string(info.param.name); });

}  // namespace
}  // namespace tandem::serve

// The shapes written here, as OpenAI's API reference gives them:
//   completion       {id, object: "text_completion", created, model,
//                     choices: [{text, index, logprobs, finish_reason}], usage}
//   chat completion  {id, object: "chat.completion", created, model,
//                     choices: [{index, message: {role, content}, logprobs, finish_reason}], usage}
//   chunks           the same with object "text_completion" / "chat.completion.chunk", chat's
//                     message replaced by delta, finish_reason null until the last chunk
//   usage            {prompt_tokens, completion_tokens, total_tokens}
//   logprobs         completions: {tokens, token_logprobs, top_logprobs: [{token: logprob}],
//                     text_offset}; chat: {content: [{token, logprob, bytes,
//                     top_logprobs: [{token, logprob, bytes}]}]}
// Keys keep this order (ordered_json), as OpenAI's responses have them.
#include "serve/openai_response.h"

#include <charconv>
#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>

namespace tandem::serve {

using Json = nlohmann::ordered_json;

namespace {

// Dumped with invalid UTF-8 replaced by U+FFFD: a token may end inside a character, and an
// error message may quote bytes of a bad request.
std::string dump(const Json& j) {
    return j.dump(-1, ' ', false, Json::error_handler_t::replace);
}

std::string event(const Json& j) {
    return "data: " + dump(j) + "\n\n";
}

// `s` with each invalid UTF-8 sequence replaced by U+FFFD, as dump writes it: for keys, which
// must be compared after that replacement.
std::string valid_utf8(const std::string& s) {
    return Json::parse(dump(Json(s))).get<std::string>();
}

// A float written as its shortest decimal (-0.1, not -0.10000000149011612). A token the model
// gives probability 0 has logprob -inf, which JSON cannot carry: OpenAI writes -9999.0 then.
Json logprob_value(float x) {
    if (!std::isfinite(x)) return -9999.0;
    char text[32];
    const auto end = std::to_chars(text, text + sizeof text, x).ptr;
    return std::strtod(std::string(text, end).c_str(), nullptr);
}

Json bytes_array(std::string_view s) {
    Json bytes = Json::array();
    for (char c : s) bytes.push_back(int(static_cast<unsigned char>(c)));
    return bytes;
}

Json completion_logprobs(const std::vector<TokenLogprobs>& tokens) {
    Json text = Json::array(), values = Json::array(), top = Json::array(), offset = Json::array();
    int64_t chars = 0;  // characters begun before the token: UTF-8 lead bytes
    for (const TokenLogprobs& t : tokens) {
        text.push_back(t.token);
        values.push_back(logprob_value(t.logprob));
        Json alternatives = Json::object();
        // Two tokens whose bytes both read as U+FFFD would share a key: the likelier is kept.
        for (const auto& [token, logprob] : t.top) {
            const std::string key = valid_utf8(token);
            if (!alternatives.contains(key)) alternatives[key] = logprob_value(logprob);
        }
        top.push_back(std::move(alternatives));
        offset.push_back(chars);
        for (char c : t.token) chars += (static_cast<unsigned char>(c) & 0xC0) != 0x80;
    }
    return Json{{"tokens", text},
                {"token_logprobs", values},
                {"top_logprobs", top},
                {"text_offset", offset}};
}

Json chat_logprobs(const std::vector<TokenLogprobs>& tokens) {
    Json content = Json::array();
    for (const TokenLogprobs& t : tokens) {
        Json top = Json::array();
        for (const auto& [token, logprob] : t.top)
            top.push_back(Json{{"token", token},
                               {"logprob", logprob_value(logprob)},
                               {"bytes", bytes_array(token)}});
        content.push_back(Json{{"token", t.token},
                               {"logprob", logprob_value(t.logprob)},
                               {"bytes", bytes_array(t.token)},
                               {"top_logprobs", std::move(top)}});
    }
    return Json{{"content", std::move(content)}};
}

Json logprobs_or_null(const std::optional<std::vector<TokenLogprobs>>& logprobs, bool is_chat) {
    if (!logprobs) return nullptr;
    return is_chat ? chat_logprobs(*logprobs) : completion_logprobs(*logprobs);
}

Json usage_json(const Usage& u) {
    return Json{{"prompt_tokens", u.prompt_tokens},
                {"completion_tokens", u.completion_tokens},
                {"total_tokens", u.prompt_tokens + u.completion_tokens}};
}

Json head(const ResponseMeta& meta, const char* object) {
    return Json{
        {"id", meta.id}, {"object", object}, {"created", meta.created}, {"model", meta.model}};
}

Json finish_or_null(const std::optional<FinishReason>& reason) {
    return reason ? Json(finish_reason_name(*reason)) : Json(nullptr);
}

}  // namespace

std::string_view finish_reason_name(FinishReason reason) {
    return reason == FinishReason::Length ? "length" : "stop";
}

std::string response_id(std::string_view prefix, uint64_t serial) {
    // splitmix64 of the serial, twice: ids look random but never repeat within a run.
    auto mix = [](uint64_t x) {
        x += 0x9E3779B97F4A7C15ull;
        x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
        x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
        return x ^ (x >> 31);
    };
    const uint64_t a = mix(serial), b = mix(a);
    char hex[25];
    std::snprintf(hex, sizeof hex, "%016llx%08llx", static_cast<unsigned long long>(a),
                  static_cast<unsigned long long>(b >> 32));
    return std::string(prefix) + "-" + hex;
}

namespace {

// {head, choices: [each choice as to_json makes it], usage}.
template <typename ToJson>
std::string whole_response(const ResponseMeta& meta, const char* object,
                           std::span<const Choice> choices, const Usage& usage, ToJson to_json) {
    Json j = head(meta, object);
    Json list = Json::array();
    for (const Choice& c : choices) list.push_back(to_json(c));
    j["choices"] = std::move(list);
    j["usage"] = usage_json(usage);
    return dump(j);
}

// The include_usage chunk: no choices, the usage of the whole response.
std::string usage_event(const ResponseMeta& meta, const char* object, const Usage& usage) {
    Json j = head(meta, object);
    j["choices"] = Json::array();
    j["usage"] = usage_json(usage);
    return event(j);
}

}  // namespace

std::string completion_json(const ResponseMeta& meta, std::span<const Choice> choices,
                            const Usage& usage) {
    return whole_response(meta, "text_completion", choices, usage, [](const Choice& c) {
        return Json{{"text", c.text},
                    {"index", c.index},
                    {"logprobs", logprobs_or_null(c.logprobs, false)},
                    {"finish_reason", finish_reason_name(c.finish_reason)}};
    });
}

std::string chat_completion_json(const ResponseMeta& meta, std::span<const Choice> choices,
                                 const Usage& usage) {
    return whole_response(meta, "chat.completion", choices, usage, [](const Choice& c) {
        return Json{{"index", c.index},
                    {"message", Json{{"role", "assistant"}, {"content", c.text}}},
                    {"logprobs", logprobs_or_null(c.logprobs, true)},
                    {"finish_reason", finish_reason_name(c.finish_reason)}};
    });
}

std::string completion_chunk_event(const ResponseMeta& meta, const ChoiceDelta& delta,
                                   bool include_usage) {
    Json j = head(meta, "text_completion");
    j["choices"] = Json::array({Json{{"text", delta.text},
                                     {"index", delta.index},
                                     {"logprobs", logprobs_or_null(delta.logprobs, false)},
                                     {"finish_reason", finish_or_null(delta.finish_reason)}}});
    if (include_usage) j["usage"] = nullptr;
    return event(j);
}

std::string chat_chunk_event(const ResponseMeta& meta, const ChoiceDelta& delta,
                             bool include_usage) {
    Json j = head(meta, "chat.completion.chunk");
    // The first chunk names the role; the last one may carry no text (delta {}).
    Json d = Json::object();
    if (delta.with_role) d["role"] = "assistant";
    if (delta.with_role || !delta.text.empty() || !delta.finish_reason) d["content"] = delta.text;
    j["choices"] = Json::array({Json{{"index", delta.index},
                                     {"delta", std::move(d)},
                                     {"logprobs", logprobs_or_null(delta.logprobs, true)},
                                     {"finish_reason", finish_or_null(delta.finish_reason)}}});
    if (include_usage) j["usage"] = nullptr;
    return event(j);
}

std::string completion_usage_event(const ResponseMeta& meta, const Usage& usage) {
    return usage_event(meta, "text_completion", usage);
}

std::string chat_usage_event(const ResponseMeta& meta, const Usage& usage) {
    return usage_event(meta, "chat.completion.chunk", usage);
}

std::string done_event() {
    return "data: [DONE]\n\n";
}

namespace {
Json error_object(const ApiError& e) {
    auto or_null = [](const std::string& s) { return s.empty() ? Json(nullptr) : Json(s); };
    return Json{{"error", Json{{"message", e.what()},
                               {"type", e.type},
                               {"param", or_null(e.param)},
                               {"code", or_null(e.code)}}}};
}
}  // namespace

std::string error_json(const ApiError& error) {
    return dump(error_object(error));
}

std::string error_event(const ApiError& error) {
    return event(error_object(error));
}

std::string models_json(std::span<const ModelInfo> models) {
    Json data = Json::array();
    for (const ModelInfo& m : models)
        data.push_back(Json{
            {"id", m.id}, {"object", "model"}, {"created", m.created}, {"owned_by", m.owned_by}});
    return dump(Json{{"object", "list"}, {"data", std::move(data)}});
}

}  // namespace tandem::serve

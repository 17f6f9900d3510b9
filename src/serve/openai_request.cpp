// Request bodies of the OpenAI API, checked field by field. The ranges are OpenAI's (temperature
// [0, 2], top_p (0, 1], penalties [-2, 2], logit_bias values [-100, 100], top_logprobs [0, 20],
// completions' logprobs [0, 5]) and llama.cpp's server's for its extras (top_k, min_p,
// repeat_penalty). A null field counts as absent, as OpenAI treats it.
#include "serve/openai_request.h"

#include <algorithm>
#include <span>
#include <nlohmann/json.hpp>

#include "io/json_fields.h"

namespace tandem::serve {

using nlohmann::json;

namespace {

[[noreturn]] void bad_field(const std::string& param, const json& value, std::string_view want) {
    throw invalid_request(param, param, " is ", io::describe_json(value), " but must be ", want);
}

json parse_body(std::string_view body) {
    if (body.size() > kMaxBodyBytes) throw body_too_large(body.size(), kMaxBodyBytes);
    // The callback bounds nesting while parsing, so that "[[[[..." cannot build a deep tree.
    auto bound_depth = [](int depth, json::parse_event_t, json&) {
        if (depth > kMaxJsonDepth)
            throw invalid_request("", "The body nests JSON deeper than ", kMaxJsonDepth,
                                  " levels; no field of this API needs that");
        return true;
    };
    json root;
    try {
        root = json::parse(body.begin(), body.end(), bound_depth);
    } catch (const json::exception& e) {
        // Syntax errors, invalid UTF-8 and lone surrogates in strings, numbers such as 1e999.
        throw invalid_request("", "The body is not valid JSON: ", e.what());
    }
    if (!root.is_object())
        throw invalid_request("", "The body is ", io::describe_json(root),
                              " but must be a JSON object");
    return root;
}

// Typed reads of the request's top-level fields (or of one nested object, with a prefix).
class Fields {
   public:
    Fields(const json& object, std::string prefix) : object_(object), prefix_(std::move(prefix)) {}

    const json* get(std::string_view key) const { return io::find_field(object_, key); }
    std::string param(std::string_view key) const { return prefix_ + std::string(key); }

    std::optional<bool> boolean(std::string_view key) const {
        const json* v = get(key);
        if (!v) return std::nullopt;
        if (!v->is_boolean()) bad_field(param(key), *v, "true or false");
        return v->get<bool>();
    }

    std::optional<std::string> string(std::string_view key) const {
        const json* v = get(key);
        if (!v) return std::nullopt;
        if (!v->is_string()) bad_field(param(key), *v, "a string");
        return v->get<std::string>();
    }

    // An integer in [lo, hi]. 2.0 is refused: the API's integers are JSON integers.
    std::optional<int64_t> integer(std::string_view key, int64_t lo, int64_t hi) const {
        const json* v = get(key);
        if (!v) return std::nullopt;
        return integer_value(*v, param(key), lo, hi);
    }

    // A number in the range; open_lo excludes lo itself.
    std::optional<double> number(std::string_view key, double lo, double hi,
                                 bool open_lo = false) const {
        const json* v = get(key);
        if (!v) return std::nullopt;
        const std::string range =
            Error::concat("a number in ", open_lo ? "(" : "[", lo, ", ", hi, "]");
        if (!v->is_number()) bad_field(param(key), *v, range);
        const double x = v->get<double>();
        if (!(open_lo ? x > lo : x >= lo) || !(x <= hi)) bad_field(param(key), *v, range);
        return x;
    }

    static int64_t integer_value(const json& v, const std::string& param, int64_t lo, int64_t hi) {
        const std::string range = Error::concat("an integer in [", lo, ", ", hi, "]");
        if (v.is_number_unsigned()) {
            if (v.get<uint64_t>() > uint64_t(hi)) bad_field(param, v, range);
        } else if (!v.is_number_integer()) {
            bad_field(param, v, range);
        }
        const int64_t x = v.get<int64_t>();
        if (x < lo || x > hi) bad_field(param, v, range);
        return x;
    }

   private:
    const json& object_;
    std::string prefix_;
};

std::vector<std::string> parse_stop(const Fields& f) {
    const json* v = f.get("stop");
    if (!v) return {};
    const std::string want_one =
        Error::concat("a non-empty string of at most ", kMaxStopBytes, " bytes");
    auto check = [&](const json& s, const std::string& param) {
        if (!s.is_string() || s.get_ref<const std::string&>().empty() ||
            s.get_ref<const std::string&>().size() > kMaxStopBytes)
            bad_field(param, s, want_one);
        return s.get<std::string>();
    };
    if (v->is_string()) return {check(*v, "stop")};
    if (!v->is_array() || v->size() > kMaxStopStrings)
        bad_field("stop", *v,
                  Error::concat("a string or an array of at most ", kMaxStopStrings, " strings"));
    std::vector<std::string> stop;
    for (size_t i = 0; i < v->size(); ++i)
        stop.push_back(check((*v)[i], Error::concat("stop[", i, "]")));
    return stop;
}

int64_t max_token_id(const RequestLimits& limits) {
    return limits.vocab_size > 0 ? limits.vocab_size - 1 : int64_t(INT32_MAX);
}

// {"50256": -100, "198": 5.5}: token ids as decimal strings, biases in [-100, 100].
std::vector<std::pair<int32_t, float>> parse_logit_bias(const Fields& f,
                                                        const RequestLimits& limits) {
    const json* v = f.get("logit_bias");
    if (!v) return {};
    if (!v->is_object()) bad_field("logit_bias", *v, "an object of token ids to numbers");
    const int64_t max_id = max_token_id(limits);
    std::vector<std::pair<int32_t, float>> bias;
    for (auto it = v->begin(); it != v->end(); ++it) {
        const std::string& key = it.key();
        const bool is_digits =
            !key.empty() && key.size() <= 10 &&
            std::all_of(key.begin(), key.end(), [](char c) { return c >= '0' && c <= '9'; });
        if (!is_digits || std::stoll(key) > max_id)
            throw invalid_request("logit_bias", "logit_bias has the key \"", key.substr(0, 40),
                                  "\" but its keys must be token ids in [0, ", max_id,
                                  "] written as decimal strings");
        const json& x = it.value();
        if (!x.is_number() || !(x.get<double>() >= -100 && x.get<double>() <= 100))
            bad_field("logit_bias[\"" + key + "\"]", x, "a number in [-100, 100]");
        bias.emplace_back(int32_t(std::stoll(key)), float(x.get<double>()));
    }
    return bias;
}

// The top-level fields a request may carry: OpenAI's (some only to be refused below, or ignored
// as `user`, `metadata` and `store` are) and the llama.cpp server's extras tandem honours. Any
// other is refused as OpenAI refuses it, so that a misspelt parameter is not silently ignored.
void refuse_unknown_fields(const json& root, bool is_chat) {
    static constexpr std::string_view kCommon[] = {
        "model", "n", "stream", "stream_options", "max_tokens", "stop", "temperature", "top_p",
        "top_k", "min_p", "repeat_penalty", "presence_penalty", "frequency_penalty", "logit_bias",
        "seed", "logprobs", "user", "metadata", "store", "tools", "functions", "response_format",
        "ignore_eos"};
    static constexpr std::string_view kChat[] = {"messages", "max_completion_tokens",
                                                 "top_logprobs", "chat_template_kwargs",
                                                 "tool_choice", "parallel_tool_calls"};
    static constexpr std::string_view kCompletion[] = {"prompt", "echo", "suffix", "best_of"};
    for (auto it = root.begin(); it != root.end(); ++it) {
        const std::string& key = it.key();
        auto known = [&](std::span<const std::string_view> keys) {
            return std::find(keys.begin(), keys.end(), key) != keys.end();
        };
        if (known(kCommon) || (is_chat ? known(kChat) : known(kCompletion))) continue;
        throw invalid_request(key.substr(0, 64), "Unrecognized request argument supplied: ",
                              key.substr(0, 64));
    }
}

// Fields this server knows but cannot honour: refused, so that a client does not get silently
// different output from what it asked for.
void refuse_unsupported(const Fields& f, bool is_chat, int64_t n) {
    for (const char* key : {"tools", "functions"}) {
        const json* v = f.get(key);
        if (v && !(v->is_array() && v->empty()))
            throw invalid_request(key, key, " is not supported: this server does no tool calling");
    }
    if (const json* v = f.get("response_format")) {
        const json* type = v->is_object() ? io::find_field(*v, "type") : nullptr;
        if (!type || *type != "text")
            throw invalid_request("response_format", "response_format ", io::describe_json(*v),
                                  " is not supported: only {\"type\": \"text\"} is");
    }
    if (is_chat) return;
    if (f.boolean("echo").value_or(false))
        throw invalid_request("echo", "echo is not supported: the reply holds only new text");
    if (auto s = f.string("suffix"); s && !s->empty())
        throw invalid_request("suffix", "suffix is not supported (no fill-in-the-middle)");
    if (auto best_of = f.integer("best_of", 1, INT32_MAX); best_of && *best_of != n)
        throw invalid_request("best_of", "best_of is not supported apart from best_of = n (", n,
                              "): use n for several samples");
}

GenerationOptions parse_options(const Fields& f, bool is_chat, const RequestLimits& limits) {
    GenerationOptions o;
    o.model = f.string("model").value_or("");
    o.n = f.integer("n", 1, limits.max_choices).value_or(1);
    o.stream = f.boolean("stream").value_or(false);
    if (const json* so = f.get("stream_options")) {
        if (!so->is_object()) bad_field("stream_options", *so, "an object");
        if (!o.stream)
            throw invalid_request("stream_options",
                                  "stream_options is only allowed when stream is true");
        o.include_usage = Fields(*so, "stream_options.").boolean("include_usage").value_or(false);
    }
    constexpr int64_t kMaxTokens = int64_t(1) << 30;  // any context is smaller
    o.max_tokens = f.integer("max_tokens", 1, kMaxTokens);
    if (!is_chat && !o.max_tokens) o.max_tokens = 16;
    if (is_chat) {
        if (auto m = f.integer("max_completion_tokens", 1, kMaxTokens)) {
            if (o.max_tokens && *o.max_tokens != *m)
                throw invalid_request("max_tokens", "max_tokens (", *o.max_tokens,
                                      ") and max_completion_tokens (", *m,
                                      ") disagree: give one of them");
            o.max_tokens = m;
            o.max_tokens_param = "max_completion_tokens";
        }
    }
    o.stop = parse_stop(f);

    infer::SamplingParams& s = o.sampling;
    s.temperature = float(f.number("temperature", 0, 2).value_or(1));
    s.top_p = float(f.number("top_p", 0, 1, true).value_or(1));
    // llama.cpp's server and vLLM take top_k = -1 (and llama.cpp 0) as "no limit".
    s.top_k = std::max<int64_t>(0, f.integer("top_k", -1, INT32_MAX).value_or(0));
    s.min_p = float(f.number("min_p", 0, 1).value_or(0));
    s.repetition_penalty = float(f.number("repeat_penalty", 0, 100, true).value_or(1));
    s.presence_penalty = float(f.number("presence_penalty", -2, 2).value_or(0));
    s.frequency_penalty = float(f.number("frequency_penalty", -2, 2).value_or(0));
    s.logit_bias = parse_logit_bias(f, limits);
    if (const json* seed = f.get("seed")) {
        // Any 64-bit integer: OpenAI's are signed; a negative one keeps its bits.
        if (seed->is_number_unsigned())
            s.seed = seed->get<uint64_t>();
        else
            s.seed = uint64_t(Fields::integer_value(*seed, "seed", INT64_MIN, INT64_MAX));
        o.has_seed = true;
    }
    if (is_chat) {
        s.logprobs = f.boolean("logprobs").value_or(false);
        if (auto top = f.integer("top_logprobs", 0, 20)) {
            if (!s.logprobs)
                throw invalid_request("top_logprobs", "top_logprobs needs logprobs to be true");
            s.top_logprobs = *top;
        }
    } else if (auto k = f.integer("logprobs", 0, 5)) {
        s.logprobs = true;
        s.top_logprobs = *k;
    }
    o.ignore_eos = f.boolean("ignore_eos").value_or(false);
    refuse_unsupported(f, is_chat, o.n);
    return o;
}

std::vector<int32_t> parse_token_ids(const json& v, const std::string& param,
                                     const RequestLimits& limits) {
    if (!v.is_array() || v.empty()) bad_field(param, v, "a non-empty array of token ids");
    const int64_t max_id = max_token_id(limits);
    std::vector<int32_t> ids;
    ids.reserve(v.size());
    for (size_t i = 0; i < v.size(); ++i)
        ids.push_back(
            int32_t(Fields::integer_value(v[i], Error::concat(param, "[", i, "]"), 0, max_id)));
    return ids;
}

// A string, an array of strings, an array of token ids, or an array of arrays of token ids.
std::vector<Prompt> parse_prompts(const Fields& f, const RequestLimits& limits) {
    const json* v = f.get("prompt");
    const char* want =
        "a string, an array of strings, an array of token ids or an array of such arrays";
    if (!v) throw invalid_request("prompt", "prompt is missing: it must be ", want);
    if (v->is_string()) return {Prompt{false, v->get<std::string>(), {}}};
    if (!v->is_array() || v->empty()) bad_field("prompt", *v, want);
    const json& first = v->front();
    if (first.is_number()) return {Prompt{true, "", parse_token_ids(*v, "prompt", limits)}};
    std::vector<Prompt> prompts;
    for (size_t i = 0; i < v->size(); ++i) {
        const json& p = (*v)[i];
        const std::string param = Error::concat("prompt[", i, "]");
        if (first.is_string()) {
            if (!p.is_string()) bad_field(param, p, "a string, as prompt[0] is");
            prompts.push_back(Prompt{false, p.get<std::string>(), {}});
        } else if (first.is_array()) {
            prompts.push_back(Prompt{true, "", parse_token_ids(p, param, limits)});
        } else {
            bad_field(param, p, want);
        }
    }
    return prompts;
}

Role parse_role(const json& v, const std::string& param) {
    const char* want = "one of \"system\", \"developer\", \"user\", \"assistant\"";
    if (!v.is_string()) bad_field(param, v, want);
    const std::string& role = v.get_ref<const std::string&>();
    // "developer" is what OpenAI's newer models call the system message.
    if (role == "system" || role == "developer") return Role::System;
    if (role == "user") return Role::User;
    if (role == "assistant") return Role::Assistant;
    if (role == "tool" || role == "function")
        throw invalid_request(param, param, " is \"", role,
                              "\", which is not supported: this server does no tool calling");
    bad_field(param, v, want);
}

// A string, or an array of {"type": "text", "text": "..."} parts.
std::string parse_content(const json* v, const std::string& param) {
    const char* want = "a string or an array of text parts";
    if (!v) throw invalid_request(param, param, " is missing: it must be ", want);
    if (v->is_string()) return v->get<std::string>();
    if (!v->is_array()) bad_field(param, *v, want);
    std::string text;
    for (size_t i = 0; i < v->size(); ++i) {
        const std::string part_param = Error::concat(param, "[", i, "]");
        const json& part = (*v)[i];
        if (!part.is_object()) bad_field(part_param, part, "an object {\"type\": \"text\", ...}");
        const Fields pf(part, part_param + ".");
        const std::string type = pf.string("type").value_or("");
        if (type != "text")
            throw invalid_request(part_param + ".type", part_param, ".type is \"",
                                  type.substr(0, 40),
                                  "\" but this server reads only \"text\" parts");
        const std::optional<std::string> t = pf.string("text");
        if (!t) throw invalid_request(part_param + ".text", part_param, ".text is missing");
        text += *t;
    }
    return text;
}

std::vector<ChatMessage> parse_messages(const Fields& f) {
    const json* v = f.get("messages");
    if (!v) throw invalid_request("messages", "messages is missing: it must be a non-empty array");
    if (!v->is_array() || v->empty()) bad_field("messages", *v, "a non-empty array of messages");
    std::vector<ChatMessage> messages;
    for (size_t i = 0; i < v->size(); ++i) {
        const std::string param = Error::concat("messages[", i, "]");
        const json& m = (*v)[i];
        if (!m.is_object()) bad_field(param, m, "an object {\"role\", \"content\"}");
        const Fields mf(m, param + ".");
        const json* role = mf.get("role");
        if (!role) throw invalid_request(param + ".role", param, ".role is missing");
        ChatMessage message;
        message.role = parse_role(*role, param + ".role");
        if (const json* calls = mf.get("tool_calls");
            calls && !(calls->is_array() && calls->empty()))
            throw invalid_request(param + ".tool_calls", param,
                                  ".tool_calls is not supported: this server does no tool calling");
        message.content = parse_content(mf.get("content"), param + ".content");
        messages.push_back(std::move(message));
    }
    return messages;
}

}  // namespace

CompletionRequest parse_completion_request(std::string_view body, const RequestLimits& limits) {
    const json root = parse_body(body);
    refuse_unknown_fields(root, false);
    const Fields f(root, "");
    CompletionRequest r;
    r.options = parse_options(f, false, limits);
    r.prompts = parse_prompts(f, limits);
    if (int64_t(r.prompts.size()) * r.options.n > limits.max_choices)
        throw invalid_request("n", "n (", r.options.n, ") times the ", r.prompts.size(),
                              " prompts asks for more than the ", limits.max_choices,
                              " choices this server gives per request");
    return r;
}

ChatRequest parse_chat_request(std::string_view body, const RequestLimits& limits) {
    const json root = parse_body(body);
    refuse_unknown_fields(root, true);
    const Fields f(root, "");
    ChatRequest r;
    r.options = parse_options(f, true, limits);
    r.messages = parse_messages(f);
    if (const json* kwargs = f.get("chat_template_kwargs")) {
        if (!kwargs->is_object()) bad_field("chat_template_kwargs", *kwargs, "an object");
        // Other keys are ignored: no template tandem knows reads them.
        r.enable_thinking =
            Fields(*kwargs, "chat_template_kwargs.").boolean("enable_thinking").value_or(true);
    }
    return r;
}

int64_t fit_to_context(int64_t n_prompt_tokens, const GenerationOptions& options, int64_t n_ctx,
                       std::string_view prompt_param) {
    const std::string param(prompt_param);
    if (n_prompt_tokens <= 0)
        throw invalid_request(param, param, " is empty once tokenized: give at least one token");
    if (n_prompt_tokens >= n_ctx)
        throw ApiError(
            400, "invalid_request_error", param, "context_length_exceeded",
            Error::concat("This model's context holds ", n_ctx, " tokens and ", param, " takes ",
                          n_prompt_tokens, ", which leaves no room to generate: shorten it"));
    const int64_t room = n_ctx - n_prompt_tokens;
    if (!options.max_tokens) return room;
    if (*options.max_tokens > room)
        throw ApiError(
            400, "invalid_request_error", options.max_tokens_param, "context_length_exceeded",
            Error::concat("This model's context holds ", n_ctx, " tokens; ", param, " takes ",
                          n_prompt_tokens, " and ", options.max_tokens_param, " asks for ",
                          *options.max_tokens, " more: at most ", room, " fit"));
    return *options.max_tokens;
}

}  // namespace tandem::serve

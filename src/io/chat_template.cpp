// The chat templates of chat_template.h, written out from the Jinja sources they stand for:
//   ChatML (Qwen2/2.5): [<|im_start|>system\nDEFAULT<|im_end|>\n when messages[0] is not
//                       system] then <|im_start|>ROLE\nCONTENT<|im_end|>\n per message
//   ChatML (Qwen3):     as above, without a default; an assistant turn before the last user
//                       message loses its <think>...</think>, one after it keeps (or gets) one;
//                       enable_thinking=false follows the generation prompt with
//                       <think>\n\n</think>\n\n
//   Llama 3.0:          <|begin_of_text|> then <|start_header_id|>ROLE<|end_header_id|>\n\n
//                       trim(CONTENT)<|eot_id|> per message
//   Llama 3.1/3.2:      as 3.0, but the first turn is always a system one: "Cutting Knowledge
//                       Date: CUTOFF\nToday Date: DATE\n\n" + trim(the system message, if any)
// The generation prompt is the assistant's header: <|im_start|>assistant\n, or
// <|start_header_id|>assistant<|end_header_id|>\n\n.
#include "io/chat_template.h"

#include <algorithm>

#include "core/error.h"

namespace tandem::io {

namespace {

bool contains(std::string_view text, std::string_view part) {
    return text.find(part) != std::string_view::npos;
}

// Jinja's trim is Python's str.strip(): ASCII whitespace and the separators \x1c-\x1f. (Unicode
// spaces such as U+00A0 are stripped by Python too, and kept here: none of the templates' users
// sends them at the edges of a turn.)
bool is_space(char c) {
    return c == ' ' || (c >= '\t' && c <= '\r') || (c >= '\x1c' && c <= '\x1f');
}
std::string_view trim(std::string_view s) {
    while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
    while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
    return s;
}
std::string_view strip_newlines_front(std::string_view s) {
    while (!s.empty() && s.front() == '\n') s.remove_prefix(1);
    return s;
}
std::string_view strip_newlines_back(std::string_view s) {
    while (!s.empty() && s.back() == '\n') s.remove_suffix(1);
    return s;
}

// The text of a Jinja string literal that starts at `s`, up to `end`, when it is plain text
// (no quote, no expression); \n and \' escapes are undone. Empty when it is not plain.
std::string literal_until(std::string_view s, std::string_view end) {
    const size_t stop = s.find(end);
    if (stop == std::string_view::npos) return "";
    std::string_view body = s.substr(0, stop);
    if (body.find_first_of("'\"{}+") != std::string_view::npos) return "";
    std::string text;
    for (size_t i = 0; i < body.size(); ++i) {
        if (body[i] == '\\' && i + 1 < body.size()) {
            ++i;
            text += body[i] == 'n' ? '\n' : body[i];
        } else {
            text += body[i];
        }
    }
    return text;
}

// Qwen2's and Qwen2.5's templates send a fixed system message when the conversation has none:
// '<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n' in the else branch.
std::string chatml_default_system(std::string_view source) {
    for (size_t at = source.find("<|im_start|>system"); at != std::string_view::npos;
         at = source.find("<|im_start|>system", at + 1)) {
        std::string_view rest = source.substr(at + std::string_view("<|im_start|>system").size());
        if (rest.starts_with("\\n"))
            rest.remove_prefix(2);
        else if (rest.starts_with("\n"))
            rest.remove_prefix(1);
        else
            continue;
        std::string text = literal_until(rest, "<|im_end|>");
        if (!text.empty()) return text;
    }
    return "";
}

// The value of a Jinja string after `key` in the source: `key "VALUE"` or `key 'VALUE'`, or the
// text up to the first \n escape or quote after it.
std::string text_after(std::string_view source, std::string_view key, std::string fallback) {
    const size_t at = source.find(key);
    if (at == std::string_view::npos) return fallback;
    std::string_view rest = trim(source.substr(at + key.size()));
    if (!rest.empty() && (rest.front() == '"' || rest.front() == '\'')) {
        const size_t close = rest.find(rest.front(), 1);
        return close == std::string_view::npos ? fallback : std::string(rest.substr(1, close - 1));
    }
    const size_t stop = std::min(rest.find("\\n"), rest.find_first_of("\"'"));
    return stop == std::string_view::npos ? fallback : std::string(rest.substr(0, stop));
}

// The markers that tell chat formats apart, listed in an error about an unknown template.
constexpr std::string_view kMarkers[] = {"<|im_start|>",
                                         "<|im_end|>",
                                         "<|start_header_id|>",
                                         "<|end_header_id|>",
                                         "<|eot_id|>",
                                         "[INST]",
                                         "<<SYS>>",
                                         "<start_of_turn>",
                                         "<|user|>",
                                         "<|assistant|>",
                                         "<|system|>",
                                         "<|end|>",
                                         "<|turn>",
                                         "</s>",
                                         "<|endoftext|>"};

}  // namespace

ChatTemplate ChatTemplate::recognise(std::string_view source) {
    const bool is_chatml = contains(source, "<|im_start|>") && contains(source, "<|im_end|>");
    const bool is_llama3 = contains(source, "<|start_header_id|>") &&
                           contains(source, "<|end_header_id|>") && contains(source, "<|eot_id|>");
    if (is_chatml != is_llama3) {
        ChatTemplate t(is_chatml ? ChatFormat::ChatMl : ChatFormat::Llama3);
        if (is_chatml) {
            t.strips_reasoning =
                contains(source, "</think>") && contains(source, "reasoning_content");
            t.default_system = chatml_default_system(source);
            t.has_thinking_switch = contains(source, "enable_thinking");
        } else if (contains(source, "Cutting Knowledge Date:")) {
            t.has_dated_system = true;
            t.knowledge_cutoff = text_after(source, "Cutting Knowledge Date:", "December 2023");
            t.date = text_after(source, "set date_string =", "26 Jul 2024");
        }
        return t;
    }
    const char* known =
        "tandem knows ChatML (<|im_start|> ... <|im_end|>: Qwen) and Llama 3 "
        "(<|start_header_id|> ... <|end_header_id|> ... <|eot_id|>)";
    if (trim(source).empty())
        throw Error("the model's tokenizer_config.json has no chat_template; ", known,
                    ": use /v1/completions, or a model directory with a template");
    std::string found;
    for (std::string_view m : kMarkers)
        if (contains(source, m)) found += (found.empty() ? "" : ", ") + std::string(m);
    std::string start(trim(source).substr(0, 60));
    std::replace(start.begin(), start.end(), '\n', ' ');
    throw Error("the model's chat_template is not one tandem knows (", known, "); it has ",
                is_chatml ? "the markers of both, " : "",
                "the markers: ", found.empty() ? std::string("none of them") : found,
                "; it begins: ", start);
}

std::string ChatTemplate::name() const {
    if (format_ == ChatFormat::Llama3) return has_dated_system ? "llama3.1" : "llama3";
    if (strips_reasoning) return "chatml (qwen3 reasoning)";
    return default_system.empty() ? "chatml" : "chatml (default system message)";
}

void ChatTemplate::render_chatml(std::string& out, std::span<const ChatMessage> messages) const {
    auto turn = [&](std::string_view role, std::string_view content) {
        out.append("<|im_start|>").append(role).append("\n").append(content).append("<|im_end|>\n");
    };
    if (!default_system.empty() && (messages.empty() || messages[0].role != Role::System))
        turn("system", default_system);
    // Qwen3: the last user message that is not a tool response splits the history; assistant
    // turns after it are the current answer and keep their reasoning.
    if (messages.empty()) return;
    size_t last_query = messages.size() - 1;
    for (size_t i = messages.size(); i-- > 0;) {
        const std::string_view c = messages[i].content;
        if (messages[i].role == Role::User &&
            !(c.starts_with("<tool_response>") && c.ends_with("</tool_response>"))) {
            last_query = i;
            break;
        }
    }
    for (size_t i = 0; i < messages.size(); ++i) {
        const ChatMessage& m = messages[i];
        if (m.role != Role::Assistant || !strips_reasoning) {
            turn(role_name(m.role), m.content);
            continue;
        }
        std::string_view content = m.content, reasoning;
        if (const size_t close = content.find("</think>"); close != std::string_view::npos) {
            reasoning = strip_newlines_back(content.substr(0, close));
            if (const size_t open = reasoning.rfind("<think>"); open != std::string_view::npos)
                reasoning.remove_prefix(open + std::string_view("<think>").size());
            reasoning = strip_newlines_front(reasoning);
            content = strip_newlines_front(
                content.substr(content.rfind("</think>") + std::string_view("</think>").size()));
        }
        if (i > last_query && (i + 1 == messages.size() || !reasoning.empty())) {
            std::string text = "<think>\n";
            text.append(strip_newlines_back(strip_newlines_front(reasoning)))
                .append("\n</think>\n\n")
                .append(strip_newlines_front(content));
            turn("assistant", text);
        } else {
            turn("assistant", content);
        }
    }
}

void ChatTemplate::render_llama3(std::string& out, std::span<const ChatMessage> messages) const {
    auto turn = [&](std::string_view role, std::string_view content) {
        out.append("<|start_header_id|>").append(role).append("<|end_header_id|>\n\n");
        out.append(content).append("<|eot_id|>");
    };
    out += "<|begin_of_text|>";
    if (has_dated_system) {
        std::string_view system;
        if (!messages.empty() && messages[0].role == Role::System) {
            system = trim(messages[0].content);
            messages = messages.subspan(1);
        }
        std::string text = "Cutting Knowledge Date: " + knowledge_cutoff + "\nToday Date: " + date +
                           "\n\n" + std::string(system);
        turn("system", text);
    }
    for (const ChatMessage& m : messages) turn(role_name(m.role), trim(m.content));
}

std::string ChatTemplate::render(std::span<const ChatMessage> messages, bool add_generation_prompt,
                                 bool enable_thinking) const {
    std::string out;
    if (format_ == ChatFormat::ChatMl) {
        render_chatml(out, messages);
        if (add_generation_prompt) out += "<|im_start|>assistant\n";
        if (add_generation_prompt && has_thinking_switch && !enable_thinking)
            out += "<think>\n\n</think>\n\n";
    } else {
        render_llama3(out, messages);
        if (add_generation_prompt) out += "<|start_header_id|>assistant<|end_header_id|>\n\n";
    }
    return out;
}

std::vector<std::string> ChatTemplate::stop_tokens() const {
    if (format_ == ChatFormat::ChatMl) return {"<|im_end|>"};
    return {"<|eot_id|>"};
}

std::vector<int32_t> ChatTemplate::stop_ids(const BpeTokenizer& tokenizer) const {
    std::vector<int32_t> ids;
    for (const std::string& text : stop_tokens()) {
        const std::optional<int32_t> id = tokenizer.token_id(text);
        if (!id)
            throw Error("the chat template (", name(), ") ends a turn with ", text,
                        " but the model's tokenizer has no such token: the template belongs to "
                        "another model family than the tokenizer");
        ids.push_back(*id);
    }
    // Llama 3.1 ends tool turns with <|eom_id|>; generation_config.json lists it as an eos.
    if (format_ == ChatFormat::Llama3)
        if (const std::optional<int32_t> id = tokenizer.token_id("<|eom_id|>")) ids.push_back(*id);
    const int32_t eos = tokenizer.model().eos_id;
    if (eos >= 0 && std::find(ids.begin(), ids.end(), eos) == ids.end()) ids.push_back(eos);
    return ids;
}

}  // namespace tandem::io

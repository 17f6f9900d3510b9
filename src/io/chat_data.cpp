// Reading fine-tuning JSON Lines. The two line forms:
//   {"messages": [{"role": "system"|"user"|"assistant", "content": "..."}, ...]}
//   {"prompt": "...", "completion": "..."}
// Other members are ignored (datasets carry ids and sources). Each bad line gets one reason that
// names the file, the line and the field, so that a person can fix the data at that spot.
#include "io/chat_data.h"

#include <iterator>
#include <nlohmann/json.hpp>

#include "core/checksum.h"
#include "core/error.h"
#include "io/document_reader.h"
#include "io/json_fields.h"

namespace tandem::io {

namespace {

bool is_blank(std::string_view line) {
    return line.find_first_not_of(" \t\r") == line.npos;
}

Role parse_role(const nlohmann::json& value, const std::string& where,
                    const std::string& field) {
    const std::string& name = expect_string(value, where, field);
    for (Role role : {Role::System, Role::User, Role::Assistant})
        if (name == role_name(role)) return role;
    throw Error(where, ": ", field, " is \"", name, "\", not one of system, user, assistant");
}

ChatExample parse_object(const nlohmann::json& json, const std::string& where, int64_t line) {
    if (!json.is_object()) throw_bad_field(where, "the line", json, "a JSON object");
    ChatExample example;
    example.line = line;
    const nlohmann::json* messages = find_field(json, "messages");
    const nlohmann::json* prompt = find_field(json, "prompt");
    const nlohmann::json* completion = find_field(json, "completion");
    if (messages && (prompt || completion))
        throw Error(
            where,
            ": has both \"messages\" and \"prompt\"/\"completion\"; a line is one or the other");
    if (messages) {
        const nlohmann::json& list = expect_array(*messages, where, "messages");
        for (size_t i = 0; i < list.size(); ++i) {
            const std::string field = "messages[" + std::to_string(i) + "]";
            const nlohmann::json& m = expect_object(list[i], where, field);
            const nlohmann::json* role = find_field(m, "role");
            const nlohmann::json* content = find_field(m, "content");
            if (!role || !content)
                throw Error(where, ": ", field, " lacks \"", role ? "content" : "role", "\"");
            ChatMessage turn;
            turn.role = parse_role(*role, where, field + ".role");
            turn.content = expect_string(*content, where, field + ".content");
            example.turns.push_back(std::move(turn));
        }
        if (example.turns.empty()) throw Error(where, ": \"messages\" is empty");
    } else if (prompt || completion) {
        if (!prompt || !completion)
            throw Error(where, ": has \"", prompt ? "prompt" : "completion", "\" but no \"",
                        prompt ? "completion" : "prompt", "\"");
        example.turns.push_back({Role::User, expect_string(*prompt, where, "prompt")});
        example.turns.push_back(
            {Role::Assistant, expect_string(*completion, where, "completion")});
        example.is_prompt_completion = true;
    } else {
        throw Error(where, ": has neither \"messages\" nor \"prompt\" and \"completion\"");
    }
    bool has_assistant = false;
    for (const ChatMessage& t : example.turns) has_assistant |= t.role == Role::Assistant;
    if (!has_assistant) throw Error(where, ": no assistant message, so nothing to learn from");
    return example;
}

}  // namespace

std::optional<ChatExample> parse_chat_line(std::string_view text, const std::string& file,
                                           int64_t line, std::string& reason) {
    const std::string where = file + ":" + std::to_string(line);
    if (is_blank(text)) {
        reason = where + ": empty line";
        return std::nullopt;
    }
    try {
        return parse_object(parse_json_text(text, where), where, line);
    } catch (const Error& e) {
        reason = e.what();
        return std::nullopt;
    }
}

ChatFile read_chat_jsonl(const std::string& path) {
    InputStream in(path);
    const std::string text(std::istreambuf_iterator<char>(in.get()), {});
    if (in.get().bad()) throw Error(path, ": read failed");
    ChatFile out;
    out.checksum = xxh3_64(text.data(), text.size());
    for (size_t at = 0; at < text.size();) {
        size_t end = text.find('\n', at);
        if (end == std::string::npos) end = text.size();
        std::string_view line(text.data() + at, end - at);
        at = end + 1;
        ++out.n_lines;
        std::string reason;
        if (auto example = parse_chat_line(line, path, out.n_lines, reason))
            out.examples.push_back(std::move(*example));
        else
            out.bad_lines.push_back({out.n_lines, std::move(reason)});
    }
    return out;
}

}  // namespace tandem::io

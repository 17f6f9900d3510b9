// Reading a prompt file whole (prompt files are small) and splitting it into prompts.
#include "io/prompt_file.h"

#include <iterator>
#include <nlohmann/json.hpp>
#include <string_view>

#include "core/error.h"
#include "io/document_reader.h"

namespace tandem::io {

namespace {

bool is_blank(std::string_view line) { return line.find_first_not_of(" \t\r") == line.npos; }

}  // namespace

std::vector<std::string> read_prompt_file(const std::string& path) {
    InputStream in(path);
    const std::string text(std::istreambuf_iterator<char>(in.get()), {});
    if (in.get().bad()) throw Error(path, ": read failed");

    std::vector<std::string_view> lines;  // with their line numbers: index + 1
    for (size_t at = 0; at < text.size();) {
        size_t end = text.find('\n', at);
        if (end == std::string::npos) end = text.size();
        std::string_view line(text.data() + at, end - at);
        if (line.ends_with('\r')) line.remove_suffix(1);
        lines.push_back(line);
        at = end + 1;
    }
    bool jsonl = false;
    for (std::string_view line : lines)
        if (!is_blank(line)) {
            jsonl = line.substr(line.find_first_not_of(" \t")).starts_with('{');
            break;
        }
    std::vector<std::string> prompts;
    for (size_t i = 0; i < lines.size(); ++i) {
        if (is_blank(lines[i])) continue;
        if (!jsonl) {
            prompts.emplace_back(lines[i]);
            continue;
        }
        nlohmann::json row;
        try {
            row = nlohmann::json::parse(lines[i]);
        } catch (const nlohmann::json::exception& e) {
            throw Error(path, ":", i + 1, ": not valid JSON (the file's first line makes it JSON ",
                        "Lines, one object with a \"prompt\" string per line): ", e.what());
        }
        if (!row.is_object() || !row.contains("prompt") || !row["prompt"].is_string())
            throw Error(path, ":", i + 1, ": expected an object with a \"prompt\" string, got ",
                        row.dump().substr(0, 80));
        prompts.push_back(row["prompt"].get<std::string>());
    }
    if (prompts.empty())
        throw Error(path, ": holds no prompts (one per line, or JSON Lines with a \"prompt\" field)");
    return prompts;
}

}  // namespace tandem::io

// tokenizer_config.json <-> the special-token fields of BpeModel.
//
// The parts read (anything else, such as model_max_length or tokenizer_class, is ignored):
//   added_tokens_decoder  {"151643": {"content": "<|endoftext|>", "special": true, ...}, ...}
//   bos_token, eos_token, pad_token   "<|im_end|>" | {"content": "<|im_end|>", ...} | null
//   add_bos_token, add_eos_token      true | false
//   chat_template         "{% for message in messages %}..." | [{"name", "template"}, ...]
#include "io/tokenizer_config.h"

#include <algorithm>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "io/atomic_file.h"
#include "io/json_fields.h"

namespace tandem::io {

using nlohmann::json;

namespace {

constexpr int64_t kIdSlack = 1024;  // as tokenizer_files.cpp: room for a few unused ids

// The id of the token whose text is `content`: an added token, else a vocabulary entry.
int32_t find_token(const BpeModel& model, std::string_view content) {
    for (const AddedToken& t : model.added)
        if (t.content == content) return t.id;
    for (size_t id = 0; id < model.tokens.size(); ++id)
        if (model.tokens[id] == content) return int32_t(id);
    return -1;
}

std::string token_text(const BpeModel& model, int32_t id) {
    for (const AddedToken& t : model.added)
        if (t.id == id) return t.content;
    return size_t(id) < model.tokens.size() ? model.tokens[size_t(id)] : std::string();
}

void apply_added_tokens(BpeModel& model, const json& decoder, const std::string& path) {
    expect_object(decoder, path, "added_tokens_decoder");
    int64_t max_id = int64_t(model.tokens.size());
    for (const AddedToken& t : model.added) max_id = std::max(max_id, int64_t(t.id) + 1);
    const int64_t id_limit = max_id + int64_t(decoder.size()) + kIdSlack;
    for (auto it = decoder.begin(); it != decoder.end(); ++it) {
        const std::string field = "added_tokens_decoder[\"" + it.key() + "\"]";
        int64_t id = -1;
        const std::string& key = it.key();
        if (!key.empty() && key.size() <= 9 && std::all_of(key.begin(), key.end(), ::isdigit))
            id = std::stoll(key);
        if (id < 0 || id >= id_limit)
            throw Error(path, ": ", field, ": the key must be a token id in [0, ", id_limit, ")");
        const json& entry = expect_object(it.value(), path, field);
        const json* content = find_field(entry, "content");
        if (!content) throw Error(path, ": ", field, ".content is missing");
        AddedToken token;
        token.id = int32_t(id);
        token.content = expect_string(*content, path, field + ".content");
        if (token.content.empty()) throw Error(path, ": ", field, ".content is empty");
        token.is_special = bool_field(entry, "special", false, path, field);
        token.normalized = bool_field(entry, "normalized", !token.is_special, path, field);

        auto same_id = std::find_if(model.added.begin(), model.added.end(),
                                    [&](const AddedToken& t) { return t.id == token.id; });
        if (same_id != model.added.end()) {
            if (same_id->content != token.content)
                throw Error(path, ": ", field, ".content is '", token.content,
                            "' but tokenizer.json gives id ", id, " to '", same_id->content, "'");
            continue;  // tokenizer.json already has it, with its own flags
        }
        if (size_t(id) < model.tokens.size() && !model.tokens[size_t(id)].empty() &&
            model.tokens[size_t(id)] != token.content)
            throw Error(path, ": ", field, ".content is '", token.content,
                        "' but the vocabulary's token ", id, " is another one");
        model.added.push_back(std::move(token));
    }
}

// bos_token etc.: a string, an object with "content", or null (no such token).
int32_t special_token(const BpeModel& model, const json& root, const char* key,
                      const std::string& path) {
    const json* v = find_field(root, key);
    if (!v) return -1;
    std::string field = key;
    if (v->is_object()) {
        const json* content = find_field(*v, "content");
        if (!content) throw Error(path, ": ", field, ".content is missing");
        v = content;
        field += ".content";
    }
    const std::string& content = expect_string(*v, path, field);
    int32_t id = find_token(model, content);
    if (id < 0)
        throw Error(path, ": ", field, " is '", content,
                    "', which is neither an added token nor in the vocabulary");
    return id;
}

std::string chat_template(const json& value, const std::string& path) {
    if (value.is_string()) return value.get<std::string>();
    expect_array(value, path, "chat_template");
    std::string names;
    for (size_t i = 0; i < value.size(); ++i) {
        const std::string field = "chat_template[" + std::to_string(i) + "]";
        const json& entry = expect_object(value[i], path, field);
        std::string name = string_field(entry, "name", "", path, field);
        if (name == "default") {
            const json* t = find_field(entry, "template");
            if (!t) throw Error(path, ": ", field, ".template is missing");
            return expect_string(*t, path, field + ".template");
        }
        names += (names.empty() ? "" : ", ") + name;
    }
    throw Error(path, ": chat_template lists no template named \"default\" (it has: ",
                names.empty() ? "none" : names, ")");
}

}  // namespace

void parse_tokenizer_config(BpeModel& model, std::string_view text, const std::string& path) {
    const json root = parse_json_text(text, path);
    expect_object(root, path, "");
    if (const json* decoder = find_field(root, "added_tokens_decoder"))
        apply_added_tokens(model, *decoder, path);
    // A token named here replaces what tokenizer.json's post_processor said.
    if (int32_t id = special_token(model, root, "bos_token", path); id >= 0) model.bos_id = id;
    if (int32_t id = special_token(model, root, "eos_token", path); id >= 0) model.eos_id = id;
    if (int32_t id = special_token(model, root, "pad_token", path); id >= 0) model.pad_id = id;
    model.add_bos = bool_field(root, "add_bos_token", model.add_bos, path, "");
    model.add_eos = bool_field(root, "add_eos_token", model.add_eos, path, "");
    if (model.add_bos && model.bos_id < 0)
        throw Error(path, ": add_bos_token is true but there is no bos_token");
    if (model.add_eos && model.eos_id < 0)
        throw Error(path, ": add_eos_token is true but there is no eos_token");
    if (const json* t = find_field(root, "chat_template"))
        model.chat_template = chat_template(*t, path);
}

void load_tokenizer_config(BpeModel& model, const std::string& path) {
    parse_tokenizer_config(model, read_file(path), path);
}

std::string to_tokenizer_config_json(const BpeModel& model) {
    nlohmann::ordered_json decoder = nlohmann::ordered_json::object();
    std::vector<const AddedToken*> added;
    for (const AddedToken& t : model.added) added.push_back(&t);
    std::sort(added.begin(), added.end(),
              [](const AddedToken* a, const AddedToken* b) { return a->id < b->id; });
    for (const AddedToken* t : added)
        decoder[std::to_string(t->id)] = {
            {"content", t->content}, {"lstrip", false},      {"normalized", t->normalized},
            {"rstrip", false},       {"single_word", false}, {"special", t->is_special}};
    auto token = [&](int32_t id) {
        return id < 0 ? nlohmann::ordered_json() : nlohmann::ordered_json(token_text(model, id));
    };
    nlohmann::ordered_json root;
    // A flag without its token adds nothing (encode_with_special), and is written so.
    root["add_bos_token"] = model.add_bos && model.bos_id >= 0;
    root["add_eos_token"] = model.add_eos && model.eos_id >= 0;
    root["added_tokens_decoder"] = decoder;
    root["bos_token"] = token(model.bos_id);
    root["eos_token"] = token(model.eos_id);
    root["pad_token"] = token(model.pad_id);
    if (!model.chat_template.empty()) root["chat_template"] = model.chat_template;
    root["clean_up_tokenization_spaces"] = false;
    root["tokenizer_class"] = "PreTrainedTokenizerFast";
    // A token that is not valid UTF-8 cannot be JSON text; U+FFFD keeps the file writable.
    return root.dump(2, ' ', false, nlohmann::ordered_json::error_handler_t::replace) + "\n";
}

void save_tokenizer_config_json(const BpeModel& model, const std::string& path) {
    write_file_atomic(path, to_tokenizer_config_json(model));
}

}  // namespace tandem::io

// tokenizer.json / encoder.json / vocab.bpe <-> BpeModel.
//
// tokenizer.json, the parts read here (anything else is ignored):
//   model.type             "BPE"
//   model.vocab            {spelled token: id}, tokens spelled in GPT-2's byte characters
//   model.merges           ["a b", ...] or [["a", "b"], ...], in rank order
//   model.ignore_merges    optional bool (Llama 3: a whole-vocabulary piece skips merging)
//   pre_tokenizer          ByteLevel{use_regex: true} (GPT-2 pattern), or
//                          Sequence[Split{pattern: {Regex|String}, behavior: Isolated}, ByteLevel]
//   normalizer             null or NFC
//   added_tokens           [{id, content, special}, ...], content in plain UTF-8
#include "io/tokenizer_files.h"

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <unordered_map>

#include "core/error.h"
#include "io/atomic_file.h"
#include "io/byte_unicode.h"

namespace tandem::io {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// The ids of at most this many tokens: larger ids are a malformed file, not a big vocabulary.
constexpr int64_t kMaxVocab = int64_t(1) << 24;

json parse_json(const std::string& path) {
    std::string text = read_file(path);
    try {
        return json::parse(text);
    } catch (const json::exception& e) {
        throw Error(path, ": not valid JSON: ", e.what());
    }
}

// Fills model.tokens from spelled -> id pairs, skipping ids that belong to added tokens.
void set_vocab(BpeModel& model, const json& vocab, const std::string& path,
               std::unordered_map<std::string, int32_t>& by_spelling) {
    if (!vocab.is_object() || vocab.empty())
        throw Error(path, ": the vocabulary is missing or not a JSON object of token -> id");
    std::unordered_map<int32_t, const AddedToken*> added;
    for (const AddedToken& t : model.added) added[t.id] = &t;
    for (auto it = vocab.begin(); it != vocab.end(); ++it) {
        if (!it.value().is_number_integer())
            throw Error(path, ": vocabulary entry '", it.key(), "' has a non-integer id");
        int64_t id = it.value().get<int64_t>();
        if (id < 0 || id >= kMaxVocab)
            throw Error(path, ": vocabulary entry '", it.key(), "' has id ", id, " outside [0, ",
                        kMaxVocab, ")");
        by_spelling[it.key()] = int32_t(id);
        if (added.count(int32_t(id))) continue;
        auto bytes = unicode_to_bytes(it.key());
        if (!bytes)
            throw Error(path, ": vocabulary entry '", it.key(),
                        "' is not spelled in GPT-2's byte characters (not a byte-level BPE?)");
        if (size_t(id) >= model.tokens.size()) model.tokens.resize(id + 1);
        if (!model.tokens[id].empty())
            throw Error(path, ": id ", id, " is used twice in the vocabulary");
        model.tokens[id] = std::move(*bytes);
    }
    std::unordered_map<std::string, int32_t> seen;
    for (size_t id = 0; id < model.tokens.size(); ++id)
        if (!model.tokens[id].empty()) seen.emplace(model.tokens[id], int32_t(id));
    for (int b = 0; b < 256; ++b)
        if (!seen.count(std::string(1, char(b))))
            throw Error(path, ": the vocabulary lacks the single byte 0x", std::hex, b,
                        " (a byte-level BPE vocabulary holds all 256)");
}

void add_merge(BpeModel& model, const std::string& left, const std::string& right,
               const std::unordered_map<std::string, int32_t>& by_spelling, const std::string& path,
               size_t rank) {
    auto find = [&](const std::string& spelled) {
        auto it = by_spelling.find(spelled);
        if (it == by_spelling.end())
            throw Error(path, ": merge ", rank, " ('", left, "' '", right, "') names '", spelled,
                        "', which is not in the vocabulary");
        return it->second;
    };
    model.merges.push_back({find(left), find(right), find(left + right)});
}

std::string pattern_of(const json& split, const std::string& path) {
    const json& p = split.value("pattern", json());
    if (p.contains("Regex")) return p["Regex"].get<std::string>();
    if (p.contains("String")) {
        // A literal string: escape it so PCRE2 reads it verbatim.
        return "\\Q" + p["String"].get<std::string>() + "\\E";
    }
    throw Error(path, ": pre_tokenizer Split has no pattern.Regex or pattern.String");
}

void set_pre_tokenizer(BpeModel& model, const json& pre, const std::string& path) {
    auto check_byte_level = [&](const json& b) {
        if (b.value("add_prefix_space", false))
            throw Error(path, ": ByteLevel add_prefix_space=true is not supported");
    };
    if (pre.is_null()) throw Error(path, ": pre_tokenizer is null; byte-level BPE needs ByteLevel");
    std::string type = pre.value("type", "");
    if (type == "ByteLevel") {
        check_byte_level(pre);
        model.pattern = kGpt2Pattern;
        return;
    }
    if (type != "Sequence")
        throw Error(path, ": pre_tokenizer type '", type,
                    "' is not supported (ByteLevel or "
                    "Sequence[Split, ByteLevel] are)");
    bool has_byte_level = false, has_split = false;
    for (const json& step : pre.value("pretokenizers", json::array())) {
        std::string t = step.value("type", "");
        if (t == "ByteLevel") {
            check_byte_level(step);
            has_byte_level = true;
            if (step.value("use_regex", true)) {
                if (has_split)
                    throw Error(path,
                                ": a Split followed by ByteLevel{use_regex} is not supported");
                model.pattern = kGpt2Pattern;
                has_split = true;
            }
        } else if (t == "Split") {
            if (has_split)
                throw Error(path, ": more than one Split pre-tokenizer is not supported");
            if (step.value("behavior", "") != "Isolated" || step.value("invert", false))
                throw Error(path, ": Split behavior '", step.value("behavior", ""),
                            "' is not supported (only Isolated, not inverted)");
            model.pattern = pattern_of(step, path);
            has_split = true;
        } else {
            throw Error(path, ": pre-tokenizer '", t, "' inside Sequence is not supported");
        }
    }
    if (!has_byte_level) throw Error(path, ": pre_tokenizer has no ByteLevel step");
    if (!has_split) throw Error(path, ": pre_tokenizer has no split pattern");
}

}  // namespace

BpeModel load_gpt2_files(const std::string& encoder_json, const std::string& vocab_bpe) {
    BpeModel model;
    json encoder = parse_json(encoder_json);
    if (encoder.is_object() && encoder.contains("<|endoftext|>") &&
        encoder["<|endoftext|>"].is_number_integer())
        model.added.push_back({"<|endoftext|>", encoder["<|endoftext|>"].get<int32_t>(), true});
    std::unordered_map<std::string, int32_t> by_spelling;
    set_vocab(model, encoder, encoder_json, by_spelling);

    std::ifstream in(vocab_bpe);
    if (!in) throw Error(vocab_bpe, ": cannot open");
    std::string line;
    size_t line_no = 0;
    while (std::getline(in, line)) {
        ++line_no;
        if (line.empty() || line.starts_with("#version")) continue;
        size_t space = line.find(' ');
        if (space == std::string::npos || line.find(' ', space + 1) != std::string::npos)
            throw Error(vocab_bpe, ":", line_no,
                        ": expected two tokens separated by one space, got '", line, "'");
        add_merge(model, line.substr(0, space), line.substr(space + 1), by_spelling,
                  vocab_bpe + ":" + std::to_string(line_no), model.merges.size());
    }
    return model;
}

BpeModel load_hf_tokenizer_json(const std::string& path) {
    json root = parse_json(path);
    if (!root.is_object() || !root.contains("model"))
        throw Error(path, ": not a tokenizer.json (no \"model\" object)");
    const json& m = root["model"];
    std::string type = m.value("type", "BPE");
    if (type != "BPE") throw Error(path, ": model type '", type, "' is not BPE");
    const json& prefix = m.value("continuing_subword_prefix", json());
    if (m.value("byte_fallback", false) || (!prefix.is_null() && prefix != ""))
        throw Error(path, ": BPE with byte_fallback or a subword prefix is not byte-level BPE");
    const json& norm = root.value("normalizer", json());
    if (!norm.is_null() && norm.value("type", "") != "NFC")
        throw Error(path, ": normalizer '", norm.value("type", "?"), "' is not supported");

    BpeModel model;
    model.ignore_merges = m.value("ignore_merges", false);
    try {
        for (const json& t : root.value("added_tokens", json::array()))
            model.added.push_back({t.at("content").get<std::string>(), t.at("id").get<int32_t>(),
                                   t.value("special", true)});
        std::unordered_map<std::string, int32_t> by_spelling;
        set_vocab(model, m.value("vocab", json()), path, by_spelling);
        const json& merges = m.value("merges", json::array());
        for (size_t rank = 0; rank < merges.size(); ++rank) {
            const json& e = merges[rank];
            if (e.is_array() && e.size() == 2) {
                add_merge(model, e[0].get<std::string>(), e[1].get<std::string>(), by_spelling,
                          path, rank);
                continue;
            }
            std::string s = e.is_string() ? e.get<std::string>() : "";
            size_t space = s.find(' ');
            if (space == std::string::npos)
                throw Error(path, ": merge ", rank, " is neither \"a b\" nor [\"a\", \"b\"]");
            add_merge(model, s.substr(0, space), s.substr(space + 1), by_spelling, path, rank);
        }
        set_pre_tokenizer(model, root.value("pre_tokenizer", json()), path);
    } catch (const json::exception& e) {
        throw Error(path, ": unexpected structure: ", e.what());
    }
    for (const AddedToken& t : model.added)
        if (t.id < 0 || t.id >= kMaxVocab || t.content.empty())
            throw Error(path, ": added token '", t.content, "' has id ", t.id, " or empty content");
    return model;
}

BpeModel load_tokenizer_model(const std::string& path) {
    std::error_code ec;
    if (fs::is_directory(path, ec)) {
        fs::path dir(path);
        if (fs::exists(dir / "tokenizer.json"))
            return load_hf_tokenizer_json(dir / "tokenizer.json");
        if (fs::exists(dir / "encoder.json") && fs::exists(dir / "vocab.bpe"))
            return load_gpt2_files(dir / "encoder.json", dir / "vocab.bpe");
        throw Error(path, ": directory holds neither tokenizer.json nor encoder.json + vocab.bpe");
    }
    if (!fs::exists(path, ec)) throw Error(path, ": no such tokenizer file or directory");
    return load_hf_tokenizer_json(path);
}

BpeTokenizer load_tokenizer(const std::string& path) {
    BpeModel model = load_tokenizer_model(path);
    try {
        return BpeTokenizer(std::move(model));
    } catch (const Error& e) {
        throw Error(path, ": ", e.what());  // e.g. a split pattern PCRE2 rejects
    }
}

std::string to_hf_tokenizer_json(const BpeModel& model) {
    json added = json::array();
    for (const AddedToken& t : model.added)
        added.push_back({{"id", t.id},
                         {"content", t.content},
                         {"single_word", false},
                         {"lstrip", false},
                         {"rstrip", false},
                         {"normalized", false},
                         {"special", t.is_special}});
    nlohmann::ordered_json vocab = nlohmann::ordered_json::object();
    for (size_t id = 0; id < model.tokens.size(); ++id)
        if (!model.tokens[id].empty()) vocab[bytes_to_unicode(model.tokens[id])] = id;
    json merges = json::array();
    for (const Merge& m : model.merges)
        merges.push_back(bytes_to_unicode(model.tokens[m.left]) + " " +
                         bytes_to_unicode(model.tokens[m.right]));
    json byte_level = {{"type", "ByteLevel"},
                       {"add_prefix_space", false},
                       {"trim_offsets", true},
                       {"use_regex", model.pattern == kGpt2Pattern}};
    json pre = byte_level;
    if (model.pattern != kGpt2Pattern)
        pre = {{"type", "Sequence"},
               {"pretokenizers",
                {{{"type", "Split"},
                  {"pattern", {{"Regex", model.pattern}}},
                  {"behavior", "Isolated"},
                  {"invert", false}},
                 byte_level}}};
    nlohmann::ordered_json root;
    root["version"] = "1.0";
    root["truncation"] = nullptr;
    root["padding"] = nullptr;
    root["added_tokens"] = added;
    root["normalizer"] = nullptr;
    root["pre_tokenizer"] = pre;
    root["post_processor"] = nullptr;
    root["decoder"] = byte_level;
    root["model"] = {{"type", "BPE"},
                     {"dropout", nullptr},
                     {"unk_token", nullptr},
                     {"continuing_subword_prefix", nullptr},
                     {"end_of_word_suffix", nullptr},
                     {"fuse_unk", false},
                     {"byte_fallback", false},
                     {"ignore_merges", model.ignore_merges},
                     {"vocab", vocab},
                     {"merges", merges}};
    return root.dump(1) + "\n";
}

void save_hf_tokenizer_json(const BpeModel& model, const std::string& path) {
    write_file_atomic(path, to_hf_tokenizer_json(model));
}

}  // namespace tandem::io

// tokenizer.json / encoder.json / vocab.bpe <-> BpeModel.
//
// tokenizer.json, the parts read here (anything else is ignored):
//   model.type             "BPE"
//   model.vocab            {spelled token: id}, tokens spelled in GPT-2's byte characters
//   model.merges           ["a b", ...] or [["a", "b"], ...], in rank order
//   model.ignore_merges    optional bool (Llama 3: a whole-vocabulary piece skips merging)
//   pre_tokenizer          ByteLevel{use_regex: true} (GPT-2 pattern), or
//                          Sequence[Split{pattern: {Regex|String}, behavior: Isolated}, ByteLevel]
//   normalizer             null, NFC, or a Sequence of NFC only (Qwen)
//   post_processor         null, ByteLevel, TemplateProcessing{single: [BOS?] $A [EOS?]} (Llama 3),
//                          or a Sequence of those
//   added_tokens           [{id, content, special, normalized}, ...], content in plain UTF-8
// Every id must be below the number of entries (vocabulary plus added tokens, with a little room
// for gaps), so a hostile id cannot make the loader allocate more than the file justifies.
#include "io/tokenizer_files.h"

#include <filesystem>
#include <fstream>
#include <unordered_map>
#include <utility>
#include <vector>

#include "core/checksum.h"
#include "core/error.h"
#include "io/atomic_file.h"
#include "io/byte_unicode.h"
#include "io/json_fields.h"
#include "io/tokenizer_config.h"
#include "io/tokenizer_json_reader.h"

namespace tandem::io {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// No byte-level BPE has more tokens than this; a larger count is a malformed file.
constexpr int64_t kMaxVocab = int64_t(1) << 24;
// Room for gaps between the ids of a vocabulary (a few unused ids are harmless).
constexpr int64_t kIdSlack = 1024;

using VocabEntries = std::vector<std::pair<std::string, int64_t>>;

std::string at(std::string_view array, size_t i) {
    return std::string(array) + "[" + std::to_string(i) + "]";
}

// Spelled token -> id for the merges' lookups: open addressing over the vocabulary's entries,
// which outlive it. A node-based std::unordered_map made these 450k lookups a fifth of a load.
class SpellingTable {
   public:
    explicit SpellingTable(const VocabEntries& entries) : entries_(entries) {
        size_t capacity = 1024;
        while (capacity < entries.size() * 2) capacity *= 2;
        slots_.assign(capacity, kEmpty);
        mask_ = capacity - 1;
    }
    // False when `spelled` is already in the table.
    bool insert(uint32_t entry) {
        std::string_view key = entries_[entry].first;
        for (size_t i = xxh3_64(key.data(), key.size()) & mask_;; i = (i + 1) & mask_) {
            if (slots_[i] == kEmpty) {
                slots_[i] = entry;
                return true;
            }
            if (entries_[slots_[i]].first == key) return false;
        }
    }
    int32_t find(std::string_view key) const {
        for (size_t i = xxh3_64(key.data(), key.size()) & mask_;; i = (i + 1) & mask_) {
            if (slots_[i] == kEmpty) return -1;
            if (entries_[slots_[i]].first == key) return int32_t(entries_[slots_[i]].second);
        }
    }

   private:
    static constexpr uint32_t kEmpty = ~uint32_t(0);
    const VocabEntries& entries_;
    std::vector<uint32_t> slots_;
    size_t mask_ = 0;
};

// Fills model.tokens from (spelled, id) entries, skipping ids that belong to added tokens; every
// id is already known to be non-negative. `field` names the vocabulary in errors.
void set_vocab(BpeModel& model, const VocabEntries& vocab, const std::string& path,
               const std::string& field, SpellingTable& by_spelling) {
    if (vocab.empty() || int64_t(vocab.size()) > kMaxVocab)
        throw Error(path, ": ", field, " has ", vocab.size(),
                    " entries (a byte-level BPE has 256 to ", kMaxVocab, ")");
    const int64_t id_limit = int64_t(vocab.size() + model.added.size()) + kIdSlack;
    std::vector<uint8_t> is_added;
    for (const AddedToken& t : model.added) {
        if (size_t(t.id) >= is_added.size()) is_added.resize(size_t(t.id) + 1);
        is_added[size_t(t.id)] = 1;
    }
    for (size_t i = 0; i < vocab.size(); ++i) {
        const std::string& spelled = vocab[i].first;  // not a structured binding: captured below
        const int64_t id = vocab[i].second;
        auto entry = [&] { return field + "[\"" + spelled + "\"]"; };  // built only for errors
        if (id < 0 || id >= id_limit)
            throw Error(path, ": ", entry(), " is ", id, " but ids must be in [0, ", id_limit,
                        ") (the entries and added tokens, with room for ", kIdSlack, " gaps)");
        if (size_t(id) < is_added.size() && is_added[size_t(id)]) continue;
        if (!by_spelling.insert(uint32_t(i))) throw Error(path, ": ", entry(), " appears twice");
        auto bytes = unicode_to_bytes(spelled);
        if (!bytes || bytes->empty())
            throw Error(path, ": ", entry(),
                        " is not a token spelled in GPT-2's byte characters (not a byte-level "
                        "BPE?)");
        if (size_t(id) >= model.tokens.size()) model.tokens.resize(size_t(id) + 1);
        if (!model.tokens[size_t(id)].empty())
            throw Error(path, ": ", entry(), " has id ", id, ", which another entry already has");
        model.tokens[size_t(id)] = std::move(*bytes);
    }
    bool has_byte[256] = {};
    for (const std::string& t : model.tokens)
        if (t.size() == 1) has_byte[uint8_t(t[0])] = true;
    for (int b = 0; b < 256; ++b)
        if (!has_byte[b])
            throw Error(path, ": ", field, " lacks the single byte 0x", std::hex, b,
                        " (a byte-level BPE vocabulary holds all 256)");
}

// Appends the merge of `left` and `right` (spelled); `field` names it in errors.
void add_merge(BpeModel& model, std::string_view left, std::string_view right,
               const SpellingTable& by_spelling, std::string& joined, const std::string& path,
               const std::string& field) {
    auto find = [&](std::string_view spelled) {
        int32_t id = by_spelling.find(spelled);
        if (id < 0)
            throw Error(path, ": ", field, " ('", left, "' '", right, "') names '", spelled,
                        "', which is not in the vocabulary");
        return id;
    };
    joined.assign(left);
    joined.append(right);
    model.merges.push_back({find(left), find(right), find(joined)});
}

std::string pattern_of(const json& split, const std::string& path, const std::string& field) {
    const json* p = find_field(split, "pattern");
    if (!p) throw Error(path, ": ", field, ".pattern is missing");
    expect_object(*p, path, field + ".pattern");
    if (const json* regex = find_field(*p, "Regex"))
        return expect_string(*regex, path, field + ".pattern.Regex");
    if (const json* literal = find_field(*p, "String")) {
        // A literal string: escape it so PCRE2 reads it verbatim.
        return "\\Q" + expect_string(*literal, path, field + ".pattern.String") + "\\E";
    }
    throw Error(path, ": ", field, ".pattern has neither Regex nor String");
}

void set_pre_tokenizer(BpeModel& model, const json& root, const std::string& path) {
    const json* pre = find_field(root, "pre_tokenizer");
    if (!pre)
        throw Error(path, ": pre_tokenizer is missing or null; byte-level BPE needs ByteLevel");
    expect_object(*pre, path, "pre_tokenizer");
    auto check_byte_level = [&](const json& b, const std::string& field) {
        if (bool_field(b, "add_prefix_space", false, path, field))
            throw Error(path, ": ", field, ".add_prefix_space=true is not supported");
    };
    std::string type = string_field(*pre, "type", "", path, "pre_tokenizer");
    if (type == "ByteLevel") {
        check_byte_level(*pre, "pre_tokenizer");
        model.pattern = kGpt2Pattern;
        return;
    }
    if (type != "Sequence")
        throw Error(path, ": pre_tokenizer.type '", type,
                    "' is not supported (ByteLevel or Sequence[Split, ByteLevel] are)");
    bool has_byte_level = false, has_split = false;
    const json* steps = find_field(*pre, "pretokenizers");
    if (!steps) throw Error(path, ": pre_tokenizer.pretokenizers is missing");
    expect_array(*steps, path, "pre_tokenizer.pretokenizers");
    for (size_t i = 0; i < steps->size(); ++i) {
        const std::string field = at("pre_tokenizer.pretokenizers", i);
        const json& step = expect_object((*steps)[i], path, field);
        std::string t = string_field(step, "type", "", path, field);
        if (t == "ByteLevel") {
            check_byte_level(step, field);
            has_byte_level = true;
            if (bool_field(step, "use_regex", true, path, field)) {
                if (has_split)
                    throw Error(
                        path, ": ", field,
                        ": a Split followed by ByteLevel{use_regex: true} is not supported");
                model.pattern = kGpt2Pattern;
                has_split = true;
            }
        } else if (t == "Split") {
            if (has_split) throw Error(path, ": ", field, ": more than one Split is not supported");
            std::string behavior = string_field(step, "behavior", "", path, field);
            if (behavior != "Isolated" || bool_field(step, "invert", false, path, field))
                throw Error(path, ": ", field, ".behavior '", behavior,
                            "' is not supported (only Isolated, not inverted)");
            model.pattern = pattern_of(step, path, field);
            has_split = true;
        } else {
            throw Error(path, ": ", field, ".type '", t, "' is not supported inside a Sequence");
        }
    }
    if (!has_byte_level) throw Error(path, ": pre_tokenizer has no ByteLevel step");
    if (!has_split) throw Error(path, ": pre_tokenizer has no split pattern");
}

// A normalizer or post_processor is one step or a {"type": "Sequence", LIST: [steps]}: calls
// one(step, field) for each step, `field` naming it for errors ("normalizer.normalizers[1]").
template <typename F>
void for_each_step(const json& part, const std::string& name, const char* list,
                   const std::string& path, F&& one) {
    if (!part.is_object() || part.value("type", json()) != "Sequence") return one(part, name);
    const std::string field = name + "." + list;
    const json* steps = find_field(part, list);
    if (!steps) throw Error(path, ": ", field, " is missing");
    expect_array(*steps, path, field);
    for (size_t i = 0; i < steps->size(); ++i) one((*steps)[i], at(field, i));
}

// NFC, or a Sequence of NFC steps, sets normalize_nfc; anything else is refused by name.
void set_normalizer(BpeModel& model, const json& root, const std::string& path) {
    const json* norm = find_field(root, "normalizer");
    if (!norm) return;
    auto check = [&](const json& step, const std::string& field) {
        expect_object(step, path, field);
        std::string type = string_field(step, "type", "", path, field);
        if (type != "NFC")
            throw Error(path, ": ", field, ".type '", type,
                        "' is not supported: tandem applies NFC (Qwen2/Qwen3) or no normalizer "
                        "(GPT-2, Llama 3); NFKC, Lowercase, Replace and Prepend belong to other "
                        "families (SentencePiece-style Llama 2, Mistral, Gemma; BERT)");
        model.normalize_nfc = true;
    };
    for_each_step(*norm, "normalizer", "normalizers", path, check);
}

void set_added_tokens(BpeModel& model, const json& root, int64_t id_limit,
                      const std::string& path) {
    const json* added = find_field(root, "added_tokens");
    if (!added) return;
    expect_array(*added, path, "added_tokens");
    std::unordered_map<int32_t, size_t> by_id;
    for (size_t i = 0; i < added->size(); ++i) {
        const std::string field = at("added_tokens", i);
        const json& t = expect_object((*added)[i], path, field);
        const json* id = find_field(t, "id");
        const json* content = find_field(t, "content");
        if (!id || !content) throw Error(path, ": ", field, " lacks its id or content");
        AddedToken token;
        token.id = int32_t(expect_int(*id, path, field + ".id", 0, id_limit));
        token.content = expect_string(*content, path, field + ".content");
        if (token.content.empty()) throw Error(path, ": ", field, ".content is empty");
        token.is_special = bool_field(t, "special", false, path, field);
        // Hugging Face's default for a token that does not say: special tokens are matched raw.
        token.normalized = bool_field(t, "normalized", !token.is_special, path, field);
        auto [it, fresh] = by_id.emplace(token.id, i);
        if (!fresh)
            throw Error(path, ": ", field, " has id ", token.id, ", which ",
                        at("added_tokens", it->second), " already has");
        model.added.push_back(std::move(token));
    }
}

// [BOS?] $A [EOS?] from TemplateProcessing.single; the ids come from its special_tokens.
void set_template(BpeModel& model, const json& tp, const std::string& path,
                  const std::string& field) {
    const json* single = find_field(tp, "single");
    if (!single) throw Error(path, ": ", field, ".single is missing");
    expect_array(*single, path, field + ".single");
    const json* specials = find_field(tp, "special_tokens");
    auto special_id = [&](const std::string& name, const std::string& item) {
        const json* s = specials ? find_field(*specials, name) : nullptr;
        const json* ids = s ? find_field(*s, "ids") : nullptr;
        if (!ids || !ids->is_array() || ids->size() != 1)
            throw Error(path, ": ", item, " names special token '", name, "' but ", field,
                        ".special_tokens[\"", name, "\"].ids is not one id");
        return int32_t(expect_int((*ids)[0], path,
                                  field + ".special_tokens[\"" + name + "\"].ids[0]", 0,
                                  int64_t(model.tokens.size() + model.added.size()) + kIdSlack));
    };
    bool seen_a = false;
    for (size_t i = 0; i < single->size(); ++i) {
        const std::string item = at(field + ".single", i);
        const json& piece = expect_object((*single)[i], path, item);
        if (const json* seq = find_field(piece, "Sequence")) {
            if (seen_a || string_field(*seq, "id", "", path, item + ".Sequence") != "A")
                throw Error(path, ": ", item, ": only one sequence, $A, is supported");
            seen_a = true;
        } else if (const json* sp = find_field(piece, "SpecialToken")) {
            int32_t id =
                special_id(string_field(*sp, "id", "", path, item + ".SpecialToken"), item);
            bool& add = seen_a ? model.add_eos : model.add_bos;
            if (add)
                throw Error(path, ": ", item, ": more than one special token ",
                            seen_a ? "after" : "before", " $A is not supported");
            add = true;
            (seen_a ? model.eos_id : model.bos_id) = id;
        } else {
            throw_bad_field(path, item, piece, "{\"Sequence\": ...} or {\"SpecialToken\": ...}");
        }
    }
    if (!seen_a) throw Error(path, ": ", field, ".single has no $A");
}

// What Hugging Face's tokenizer(text) puts around the text: Llama 3's TemplateProcessing adds
// <|begin_of_text|>; ByteLevel (Qwen) and null add nothing.
void set_post_processor(BpeModel& model, const json& root, const std::string& path) {
    const json* post = find_field(root, "post_processor");
    if (!post) return;
    auto one = [&](const json& step, const std::string& field) {
        expect_object(step, path, field);
        std::string type = string_field(step, "type", "", path, field);
        if (type == "TemplateProcessing") return set_template(model, step, path, field);
        if (type == "ByteLevel") return;  // offsets only; it adds no tokens
        throw Error(
            path, ": ", field, ".type '", type,
            "' is not supported (ByteLevel or TemplateProcessing are; RobertaProcessing and "
            "BertProcessing belong to encoder models)");
    };
    for_each_step(*post, "post_processor", "processors", path, one);
}

// An id named by the post-processor must be a token the model has.
void check_special_id(const BpeModel& model, int32_t id, const char* what,
                      const std::string& path) {
    if (id < 0) return;
    if (size_t(id) < model.tokens.size() && !model.tokens[size_t(id)].empty()) return;
    for (const AddedToken& t : model.added)
        if (t.id == id) return;
    throw Error(path, ": post_processor's ", what, " id ", id,
                " is neither in model.vocab nor in "
                "added_tokens");
}

}  // namespace

BpeModel load_gpt2_files(const std::string& encoder_json, const std::string& vocab_bpe) {
    BpeModel model;
    const json encoder = parse_json_text(read_file(encoder_json), encoder_json);
    expect_object(encoder, encoder_json, "");
    VocabEntries vocab;
    vocab.reserve(encoder.size());
    for (auto it = encoder.begin(); it != encoder.end(); ++it)
        vocab.emplace_back(it.key(), expect_int(it.value(), encoder_json, "[\"" + it.key() + "\"]",
                                                0, int64_t(encoder.size()) + kIdSlack));
    for (const auto& [spelled, id] : vocab)
        if (spelled == "<|endoftext|>") model.added.push_back({spelled, int32_t(id), true});
    SpellingTable by_spelling(vocab);
    set_vocab(model, vocab, encoder_json, "the vocabulary", by_spelling);

    std::ifstream in(vocab_bpe);
    if (!in) throw Error(vocab_bpe, ": cannot open");
    std::string line, joined;
    size_t line_no = 0;
    while (std::getline(in, line)) {
        ++line_no;
        if (line.empty() || line.starts_with("#version")) continue;
        size_t space = line.find(' ');
        if (space == std::string::npos || line.find(' ', space + 1) != std::string::npos)
            throw Error(vocab_bpe, ":", line_no,
                        ": expected two tokens separated by one space, got '", line, "'");
        add_merge(model, std::string_view(line).substr(0, space),
                  std::string_view(line).substr(space + 1), by_spelling, joined,
                  vocab_bpe + ":" + std::to_string(line_no),
                  "merge " + std::to_string(model.merges.size()));
    }
    return model;
}

BpeModel parse_hf_tokenizer_json(std::string_view text, const std::string& path) {
    const TokenizerJsonParts parts = read_tokenizer_json(text, path);
    const json& root = parts.root;
    expect_object(root, path, "");
    const json* m = find_field(root, "model");
    if (!m) throw Error(path, ": not a tokenizer.json (no \"model\" object)");
    expect_object(*m, path, "model");
    std::string type = string_field(*m, "type", "BPE", path, "model");
    if (type != "BPE") throw Error(path, ": model.type '", type, "' is not BPE");
    if (bool_field(*m, "byte_fallback", false, path, "model") ||
        !string_field(*m, "continuing_subword_prefix", "", path, "model").empty() ||
        !string_field(*m, "end_of_word_suffix", "", path, "model").empty())
        throw Error(path,
                    ": model.byte_fallback or a subword prefix/suffix: a SentencePiece-style "
                    "BPE, not byte-level BPE");
    // A vocabulary or merges of another JSON type stayed in the tree.
    if (!parts.has_vocab) {
        const json* v = find_field(*m, "vocab");
        if (!v) throw Error(path, ": model.vocab is missing");
        expect_object(*v, path, "model.vocab");
    }
    if (const json* v = find_field(*m, "merges")) expect_array(*v, path, "model.merges");

    BpeModel model;
    model.ignore_merges = bool_field(*m, "ignore_merges", false, path, "model");
    const json* added = find_field(root, "added_tokens");
    const int64_t id_limit =
        int64_t(parts.vocab.size() + (added && added->is_array() ? added->size() : 0)) + kIdSlack;
    set_added_tokens(model, root, id_limit, path);
    SpellingTable by_spelling(parts.vocab);
    set_vocab(model, parts.vocab, path, "model.vocab", by_spelling);
    model.merges.reserve(parts.merges.size());
    std::string joined;
    for (size_t rank = 0; rank < parts.merges.size(); ++rank)
        add_merge(model, parts.merges[rank].first, parts.merges[rank].second, by_spelling, joined,
                  path, at("model.merges", rank));
    set_normalizer(model, root, path);
    set_pre_tokenizer(model, root, path);
    set_post_processor(model, root, path);
    check_special_id(model, model.bos_id, "BOS", path);
    check_special_id(model, model.eos_id, "EOS", path);
    return model;
}

BpeModel load_hf_tokenizer_json(const std::string& path) {
    return parse_hf_tokenizer_json(read_file(path), path);
}

BpeModel load_tokenizer_model(const std::string& path) {
    std::error_code ec;
    fs::path dir;
    BpeModel model;
    if (fs::is_directory(path, ec)) {
        dir = path;
        if (fs::exists(dir / "tokenizer.json"))
            model = load_hf_tokenizer_json(dir / "tokenizer.json");
        else if (fs::exists(dir / "encoder.json") && fs::exists(dir / "vocab.bpe"))
            model = load_gpt2_files(dir / "encoder.json", dir / "vocab.bpe");
        else
            throw Error(path,
                        ": directory holds neither tokenizer.json nor encoder.json + vocab.bpe");
    } else {
        if (!fs::exists(path, ec)) throw Error(path, ": no such tokenizer file or directory");
        model = load_hf_tokenizer_json(path);
        dir = fs::path(path).parent_path();
    }
    // Hugging Face keeps the special tokens, BOS/EOS flags and chat template beside tokenizer.json.
    if (fs::path config = dir / "tokenizer_config.json"; fs::exists(config, ec))
        load_tokenizer_config(model, config.string());
    return model;
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
    // Stand-ins for the spliced parts; no token can be spelled with U+0001 in GPT-2's characters.
    static constexpr const char* kVocabMark = "\x01vocab\x01";
    static constexpr const char* kMergesMark = "\x01merges\x01";
    json added = json::array();
    for (const AddedToken& t : model.added)
        added.push_back({{"id", t.id},
                         {"content", t.content},
                         {"single_word", false},
                         {"lstrip", false},
                         {"rstrip", false},
                         {"normalized", t.normalized},
                         {"special", t.is_special}});
    // The vocabulary and merges are written as text and spliced in: ordered_json looks each new
    // key up by a linear scan, which made writing Qwen3's 151k-token vocabulary take a minute.
    std::string vocab = "{", merges = "[";
    for (size_t id = 0; id < model.tokens.size(); ++id) {
        if (model.tokens[id].empty()) continue;
        vocab += vocab.size() > 1 ? ",\n  " : "\n  ";
        vocab += json(bytes_to_unicode(model.tokens[id])).dump() + ": " + std::to_string(id);
    }
    vocab += "\n }";
    for (const Merge& m : model.merges) {
        merges += merges.size() > 1 ? ",\n  " : "\n  ";
        merges += json(bytes_to_unicode(model.tokens[m.left]) + " " +
                       bytes_to_unicode(model.tokens[m.right]))
                      .dump();
    }
    merges += "\n ]";
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
    // What tokenizer(text) puts around the text, as Llama 3's files say it.
    // A flag without its token adds nothing, as in encode_with_special.
    const bool add_bos = model.add_bos && model.bos_id >= 0;
    const bool add_eos = model.add_eos && model.eos_id >= 0;
    json post = nullptr;
    if (add_bos || add_eos) {
        json specials = json::object();
        auto special = [&](int32_t id, int type_id) {
            // Named as HF names it: an added token by its text, a vocabulary one as spelled.
            std::string name = size_t(id) < model.tokens.size()
                                   ? bytes_to_unicode(model.tokens[size_t(id)])
                                   : std::string();
            for (const AddedToken& t : model.added)
                if (t.id == id) name = t.content;
            specials[name] = {{"id", name}, {"ids", {id}}, {"tokens", {name}}};
            return json{{"SpecialToken", {{"id", name}, {"type_id", type_id}}}};
        };
        auto around = [&](const char* sequence, int type_id) {
            json out = json::array();
            if (add_bos) out.push_back(special(model.bos_id, type_id));
            out.push_back({{"Sequence", {{"id", sequence}, {"type_id", type_id}}}});
            if (add_eos) out.push_back(special(model.eos_id, type_id));
            return out;
        };
        json single = around("A", 0), pair = single;
        for (const json& item : around("B", 1)) pair.push_back(item);
        post = {{"type", "TemplateProcessing"},
                {"single", single},
                {"pair", pair},
                {"special_tokens", specials}};
    }
    nlohmann::ordered_json root;
    root["version"] = "1.0";
    root["truncation"] = nullptr;
    root["padding"] = nullptr;
    root["added_tokens"] = added;
    root["normalizer"] = model.normalize_nfc ? json{{"type", "NFC"}} : json(nullptr);
    root["pre_tokenizer"] = pre;
    root["post_processor"] = post;
    root["decoder"] = byte_level;
    root["model"] = {{"type", "BPE"},
                     {"dropout", nullptr},
                     {"unk_token", nullptr},
                     {"continuing_subword_prefix", nullptr},
                     {"end_of_word_suffix", nullptr},
                     {"fuse_unk", false},
                     {"byte_fallback", false},
                     {"ignore_merges", model.ignore_merges},
                     {"vocab", kVocabMark},
                     {"merges", kMergesMark}};
    std::string text = root.dump(1) + "\n";
    for (auto [mark, part] : {std::pair{kVocabMark, &vocab}, std::pair{kMergesMark, &merges}}) {
        const std::string quoted = json(mark).dump();
        size_t at = text.find(quoted);
        TANDEM_ASSERT(at != std::string::npos, mark);
        text.replace(at, quoted.size(), *part);
    }
    return text;
}

void save_hf_tokenizer_json(const BpeModel& model, const std::string& path) {
    write_file_atomic(path, to_hf_tokenizer_json(model));
}

}  // namespace tandem::io

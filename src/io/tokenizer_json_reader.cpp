// A SAX handler over nlohmann's parser: every event goes to nlohmann's own tree builder except
// those inside model.vocab and model.merges, which are collected here. Measured on Qwen3's
// tokenizer.json (151k tokens, 151k merges): building the tree of those two with std::map nodes,
// then walking and freeing it, was most of the 0.8 s a load took.
#include "io/tokenizer_json_reader.h"

#include "core/error.h"
#include "io/json_fields.h"

namespace tandem::io {

using nlohmann::json;

namespace {

class Reader {
   public:
    Reader(TokenizerJsonParts& parts, const std::string& path)
        : parts_(parts), path_(path), tree_(parts.root, true) {}

    // Events a collected part may not contain.
    bool null() { return in_part() ? bad(json()) : forward(tree_.null()); }
    bool boolean(bool v) { return in_part() ? bad(json(v)) : forward(tree_.boolean(v)); }
    bool number_float(double v, const std::string& s) {
        return in_part() ? bad(json(v)) : forward(tree_.number_float(v, s));
    }
    bool binary(json::binary_t& v) { return in_part() ? bad(json()) : tree_.binary(v); }
    bool number_integer(int64_t v) {
        if (in_part() && (mode_ != Mode::Vocab || v < 0)) return bad(json(v));
        if (in_part()) return vocab_id(v);
        return forward(tree_.number_integer(v));
    }
    bool number_unsigned(uint64_t v) {
        if (mode_ == Mode::Vocab)
            return v < uint64_t(INT32_MAX) ? vocab_id(int64_t(v)) : bad(json(v));
        if (in_part()) return bad(json(v));
        return forward(tree_.number_unsigned(v));
    }
    bool string(std::string& s) {
        if (mode_ == Mode::Vocab) return bad(json(s));
        if (mode_ == Mode::Merges) {
            if (pair_open_) {
                if (pair_.size() == 2) return bad(json(s));
                pair_.push_back(std::move(s));
                return true;
            }
            size_t space = s.find(' ');
            if (space == std::string::npos || s.find(' ', space + 1) != std::string::npos)
                return bad(json(s));
            parts_.merges.emplace_back(s.substr(0, space), s.substr(space + 1));
            return true;
        }
        return forward(tree_.string(s));
    }
    bool key(std::string& k) {
        if (mode_ == Mode::Vocab) {
            key_ = std::move(k);
            return true;
        }
        if (in_part()) return bad(json());
        // Which collected part, if any, the value of this key is.
        pending_ = Mode::None;
        if (depth_ == 2 && in_model_ && k == "vocab") pending_ = Mode::Vocab;
        if (depth_ == 2 && in_model_ && k == "merges") pending_ = Mode::Merges;
        if (depth_ == 1) root_key_is_model_ = k == "model";
        return tree_.key(k);
    }
    bool start_object(size_t n) {
        if (in_part()) return bad(json::object());
        if (pending_ == Mode::Vocab) return begin(Mode::Vocab);
        pending_ = Mode::None;
        ++depth_;
        if (depth_ == 2) in_model_ = root_key_is_model_;
        return tree_.start_object(n);
    }
    bool end_object() {
        if (mode_ == Mode::Vocab) return end();
        --depth_;
        if (depth_ < 2) in_model_ = false;
        return tree_.end_object();
    }
    bool start_array(size_t n) {
        if (mode_ == Mode::Merges && !pair_open_) {
            pair_open_ = true;
            pair_.clear();
            return true;
        }
        if (in_part()) return bad(json::array());
        if (pending_ == Mode::Merges) return begin(Mode::Merges);
        pending_ = Mode::None;
        ++depth_;
        return tree_.start_array(n);
    }
    bool end_array() {
        if (mode_ == Mode::Merges && pair_open_) {
            if (pair_.size() != 2) return bad(json(pair_));
            parts_.merges.emplace_back(std::move(pair_[0]), std::move(pair_[1]));
            pair_open_ = false;
            return true;
        }
        if (mode_ == Mode::Merges) return end();
        --depth_;
        return tree_.end_array();
    }
    bool parse_error(size_t position, const std::string&, const nlohmann::detail::exception& e) {
        throw Error(path_, ": not valid JSON (truncated or damaged?) at byte ", position, ": ",
                    e.what());
    }

   private:
    enum class Mode { None, Vocab, Merges };

    bool in_part() const { return mode_ != Mode::None; }
    bool forward(bool ok) {
        pending_ = Mode::None;  // a scalar value: the key before it named no collected part
        return ok;
    }
    bool begin(Mode m) {
        mode_ = m;
        pending_ = Mode::None;
        (m == Mode::Vocab ? parts_.has_vocab : parts_.has_merges) = true;
        return true;
    }
    bool end() {
        mode_ = Mode::None;
        return tree_.null();  // the tree keeps the key, with null in place of the collected part
    }
    bool vocab_id(int64_t id) {
        parts_.vocab.emplace_back(std::move(key_), id);
        return true;
    }
    // A value a collected part may not hold: named by its place, e.g. model.merges[12].
    [[noreturn]] bool bad(const json& value) {
        if (mode_ == Mode::Vocab)
            throw_bad_field(path_, "model.vocab[\"" + key_ + "\"]", value,
                            "an integer id in [0, 2^31)");
        throw_bad_field(path_, "model.merges[" + std::to_string(parts_.merges.size()) + "]", value,
                        "\"a b\" (two tokens, one space) or [\"a\", \"b\"]");
    }

    TokenizerJsonParts& parts_;
    const std::string& path_;
    nlohmann::detail::json_sax_dom_parser<json> tree_;
    Mode mode_ = Mode::None, pending_ = Mode::None;
    int depth_ = 0;  // containers open in the tree (not counting a collected part)
    bool root_key_is_model_ = false, in_model_ = false;
    std::string key_;
    bool pair_open_ = false;
    std::vector<std::string> pair_;
};

}  // namespace

TokenizerJsonParts read_tokenizer_json(std::string_view text, const std::string& path) {
    TokenizerJsonParts parts;
    Reader reader(parts, path);
    json::sax_parse(text.begin(), text.end(), &reader);
    return parts;
}

}  // namespace tandem::io

// tokenizer.ggml.* <-> BpeModel. The keys (gguf-py constants.py; llama.cpp's llama-vocab.cpp
// reads them), for tokenizer.ggml.model = "gpt2" (byte-level BPE):
//   tokenizer.ggml.model          string  "gpt2"
//   tokenizer.ggml.pre            string  pre-tokenizer name: "gpt-2", "llama-bpe", "qwen2", ...
//   tokenizer.ggml.tokens         [string] one per id; normal tokens spelled in GPT-2's byte
//                                 characters, added tokens (control, user-defined) in plain text,
//                                 ids the HF vocabulary skips as "[PAD<id>]"
//   tokenizer.ggml.token_type     [i32]   1 normal, 2 unknown, 3 control, 4 user-defined,
//                                         5 unused, 6 byte (the converter: special added tokens
//                                         are control, other added tokens user-defined)
//   tokenizer.ggml.merges         [string] "left right" in rank order, spelled like the tokens
//   tokenizer.ggml.bos_token_id, eos_token_id, padding_token_id   u32 (optional)
//   tokenizer.ggml.add_bos_token, add_eos_token                   bool (optional)
//   tokenizer.chat_template       string  (optional)
#include "io/gguf_tokenizer.h"

#include <unordered_map>

#include "core/error.h"
#include "io/byte_unicode.h"
#include "io/pretokenizer.h"

namespace tandem::io {

namespace {

// llama.cpp's names for the three patterns tandem knows (llama-vocab.cpp: the names it maps to
// LLAMA_VOCAB_PRE_TYPE_GPT2, _LLAMA3 and _QWEN2, leaving out those that add other behaviour).
constexpr std::string_view kGpt2Names[] = {"gpt-2", "phi-2", "gigachat", "a.x-4.0", "mellum"};
constexpr std::string_view kLlama3Names[] = {"llama-bpe", "llama3",  "llama-v3", "falcon3",
                                             "falcon-h1", "pixtral", "midm-2.0", "lfm2"};
constexpr std::string_view kQwen2Names[] = {"qwen2", "deepseek-r1-qwen", "kormo", "f2llmv2"};

template <size_t N>
bool is_one_of(std::string_view name, const std::string_view (&names)[N]) {
    for (std::string_view n : names)
        if (n == name) return true;
    return false;
}

int32_t special_id(const GgufMetadata& md, const char* key, size_t n_tokens) {
    if (!md.contains(key)) return -1;
    const int64_t id = md.get_int(key);
    if (id < 0 || uint64_t(id) >= n_tokens)
        throw Error(md.source(), ": ", key, " is ", id, ", outside the ", n_tokens, " tokens");
    return int32_t(id);
}

std::string_view token_type_name(int64_t t) {
    switch (t) {
        case 1:
            return "normal";
        case 2:
            return "unknown";
        case 3:
            return "control";
        case 4:
            return "user-defined";
        case 5:
            return "unused";
        case 6:
            return "byte";
        default:
            return "no type";
    }
}

}  // namespace

std::string_view gguf_pre_tokenizer_pattern(std::string_view pre, std::string_view source) {
    if (is_one_of(pre, kGpt2Names)) return kGpt2Pattern;
    if (is_one_of(pre, kLlama3Names)) return kLlama3Pattern;
    if (is_one_of(pre, kQwen2Names)) return kQwen2Pattern;
    throw Error(source, ": tokenizer.ggml.pre is '", pre,
                "', a pre-tokenizer tandem does not know (it reads GPT-2's: gpt-2, Llama 3's: "
                "llama-bpe, llama3, Qwen2's: qwen2, and their aliases in llama.cpp)");
}

std::string_view gguf_pre_tokenizer_name(std::string_view pattern) {
    if (pattern == kGpt2Pattern) return "gpt-2";
    if (pattern == kLlama3Pattern) return "llama-bpe";
    if (pattern == kQwen2Pattern) return "qwen2";
    throw Error(
        "GGUF export: the tokenizer's split pattern has no llama.cpp pre-tokenizer name "
        "(llama.cpp knows GPT-2's, Llama 3's and Qwen2's): ",
        pattern);
}

BpeModel bpe_model_from_gguf(const GgufMetadata& md) {
    const std::string& src = md.source();
    const std::string& kind = md.get_string("tokenizer.ggml.model");
    if (kind != "gpt2")
        throw Error(src, ": tokenizer.ggml.model is '", kind, "'",
                    kind == "llama" ? " (SentencePiece)" : "",
                    ", which tandem does not read (it reads byte-level BPE, \"gpt2\")");
    BpeModel model;
    const std::string pre = md.get_string_or("tokenizer.ggml.pre", "");
    if (pre.empty() || pre == "default")
        throw Error(src, ": tokenizer.ggml.pre is ", pre.empty() ? "missing" : "'default'",
                    ", which names no split pattern (llama.cpp guesses one and warns that "
                    "quality degrades); convert the model again with a current llama.cpp");
    model.pattern = gguf_pre_tokenizer_pattern(pre, src);
    model.ignore_merges = model.pattern == kLlama3Pattern;  // llama.cpp does the same
    model.normalize_nfc = model.pattern == kQwen2Pattern;

    const std::vector<std::string>& spelled = md.get_strings("tokenizer.ggml.tokens");
    const size_t n = spelled.size();
    if (n == 0) throw Error(src, ": tokenizer.ggml.tokens is empty");
    if (n > size_t(INT32_MAX)) throw Error(src, ": tokenizer.ggml.tokens has ", n, " tokens");
    std::vector<int64_t> types(n, int64_t(GgufTokenType::Normal));
    if (md.contains("tokenizer.ggml.token_type")) {
        types = md.get_ints("tokenizer.ggml.token_type");
        if (types.size() != n)
            throw Error(src, ": tokenizer.ggml.token_type has ", types.size(),
                        " entries but tokenizer.ggml.tokens has ", n);
    }
    model.tokens.resize(n);
    std::unordered_map<std::string, int32_t> by_spelling;
    for (size_t id = 0; id < n; ++id) {
        const std::string& s = spelled[id];
        switch (GgufTokenType(types[id])) {
            case GgufTokenType::Normal: {
                auto bytes = unicode_to_bytes(s);
                if (!bytes || bytes->empty())
                    throw Error(src, ": token ", id, " ('", s,
                                "') is not spelled in GPT-2's byte "
                                "characters (not a byte-level BPE vocabulary?)");
                model.tokens[id] = std::move(*bytes);
                break;
            }
            case GgufTokenType::Control:
            case GgufTokenType::UserDefined:
                if (s.empty()) throw Error(src, ": added token ", id, " is empty");
                model.added.push_back(
                    {s, int32_t(id), GgufTokenType(types[id]) == GgufTokenType::Control});
                break;
            case GgufTokenType::Unused:
                break;
            default:
                throw Error(src, ": token ", id, " ('", s, "') has type ", types[id], " (",
                            token_type_name(types[id]),
                            "), which a byte-level BPE vocabulary does not use");
        }
        if (types[id] != int64_t(GgufTokenType::Unused) &&
            !by_spelling.emplace(s, int32_t(id)).second)
            throw Error(src, ": token ", id, " ('", s, "') repeats token ", by_spelling[s]);
    }
    // Ids past the last vocabulary entry belong to added tokens only (as the HF loader leaves it).
    while (!model.tokens.empty() && model.tokens.back().empty()) model.tokens.pop_back();
    std::unordered_map<std::string, int32_t> by_bytes;
    for (size_t id = 0; id < model.tokens.size(); ++id)
        if (!model.tokens[id].empty()) by_bytes.emplace(model.tokens[id], int32_t(id));
    for (int b = 0; b < 256; ++b)
        if (!by_bytes.count(std::string(1, char(b))))
            throw Error(src, ": tokenizer.ggml.tokens lacks the single byte 0x", std::hex, b,
                        " (a byte-level BPE vocabulary holds all 256)");

    const std::vector<std::string>& merges = md.get_strings("tokenizer.ggml.merges");
    model.merges.reserve(merges.size());
    for (size_t rank = 0; rank < merges.size(); ++rank) {
        const std::string& m = merges[rank];
        const size_t space = m.find(' ', 1);
        auto find = [&](const std::string& s) {
            auto it = by_spelling.find(s);
            if (it == by_spelling.end())
                throw Error(src, ": merge ", rank, " ('", m, "') names '", s,
                            "', which is not in tokenizer.ggml.tokens");
            return it->second;
        };
        if (space == std::string::npos || m.find(' ', space + 1) != std::string::npos)
            throw Error(src, ": merge ", rank, " ('", m,
                        "') is not two tokens separated by one space");
        const std::string left = m.substr(0, space), right = m.substr(space + 1);
        model.merges.push_back({find(left), find(right), find(left + right)});
    }

    model.bos_id = special_id(md, "tokenizer.ggml.bos_token_id", n);
    model.eos_id = special_id(md, "tokenizer.ggml.eos_token_id", n);
    model.pad_id = special_id(md, "tokenizer.ggml.padding_token_id", n);
    model.add_bos = md.get_bool_or("tokenizer.ggml.add_bos_token", model.pattern == kLlama3Pattern);
    model.add_eos = md.get_bool_or("tokenizer.ggml.add_eos_token", false);
    model.chat_template = md.get_string_or("tokenizer.chat_template", "");
    return model;
}

void add_bpe_model_to_gguf(GgufMetadata& md, const BpeModel& model, size_t n_embedding_rows) {
    size_t n = std::max(model.tokens.size(), n_embedding_rows);
    for (const AddedToken& t : model.added) n = std::max(n, size_t(t.id) + 1);
    std::vector<std::string> tokens(n);
    std::vector<int32_t> types(n, int32_t(GgufTokenType::Unused));
    for (size_t id = 0; id < model.tokens.size(); ++id) {
        if (model.tokens[id].empty()) continue;
        tokens[id] = bytes_to_unicode(model.tokens[id]);
        types[id] = int32_t(GgufTokenType::Normal);
    }
    for (const AddedToken& t : model.added) {  // an added token wins over a vocabulary entry
        tokens[t.id] = t.content;
        types[t.id] = int32_t(t.is_special ? GgufTokenType::Control : GgufTokenType::UserDefined);
    }
    for (size_t id = 0; id < n; ++id)
        if (types[id] == int32_t(GgufTokenType::Unused))
            tokens[id] = "[PAD" + std::to_string(id) + "]";
    std::vector<std::string> merges;
    merges.reserve(model.merges.size());
    for (const Merge& m : model.merges)
        merges.push_back(bytes_to_unicode(model.tokens[m.left]) + " " +
                         bytes_to_unicode(model.tokens[m.right]));

    md.set("tokenizer.ggml.model", std::string("gpt2"));
    md.set("tokenizer.ggml.pre", std::string(gguf_pre_tokenizer_name(model.pattern)));
    md.set("tokenizer.ggml.tokens", GgufArray::of_strings(std::move(tokens)));
    md.set("tokenizer.ggml.token_type", GgufArray::of<int32_t>(types));
    md.set("tokenizer.ggml.merges", GgufArray::of_strings(std::move(merges)));
    if (model.bos_id >= 0) md.set("tokenizer.ggml.bos_token_id", uint32_t(model.bos_id));
    if (model.eos_id >= 0) md.set("tokenizer.ggml.eos_token_id", uint32_t(model.eos_id));
    if (model.pad_id >= 0) md.set("tokenizer.ggml.padding_token_id", uint32_t(model.pad_id));
    md.set("tokenizer.ggml.add_bos_token", model.add_bos);
    md.set("tokenizer.ggml.add_eos_token", model.add_eos);
    if (!model.chat_template.empty()) md.set("tokenizer.chat_template", model.chat_template);
}

}  // namespace tandem::io

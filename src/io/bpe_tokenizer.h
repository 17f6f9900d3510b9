// Byte-level BPE: a vocabulary of byte strings, ranked merges, a split pattern and added tokens.
// Encodes any byte string and decodes back to exactly the same bytes. Reading and writing the
// files that describe a tokenizer is tokenizer_files.cpp's job; this file only runs the model.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "io/pretokenizer.h"

namespace tandem::io {

// A token matched verbatim in the text before any splitting or merging (<|endoftext|>, ...).
struct AddedToken {
    std::string content;
    int32_t id = 0;
    bool is_special = true;  // false for HF's "normal" added tokens such as Qwen3's <think>
    // Hugging Face's `normalized`: matched in the normalized text rather than the raw text. With
    // a normalizer, HF first cuts the raw text at the tokens that are not normalized, then
    // normalizes each remaining part and cuts it at the normalized ones; tandem does the same.
    bool normalized = false;
};

// One merge: the adjacent pair (left, right) becomes `merged`. Its rank is its index in the list.
struct Merge {
    int32_t left = 0, right = 0, merged = 0;
};

// Everything a tokenizer is, already checked by the loader: ids are dense enough to index,
// every merge names tokens of `tokens`, the 256 single bytes are all present.
struct BpeModel {
    std::vector<std::string> tokens;  // id -> raw bytes; "" for ids used only by added tokens
    std::vector<Merge> merges;        // in rank order
    std::vector<AddedToken> added;
    std::string pattern{kGpt2Pattern};
    // Llama 3 style: a piece that is a whole vocabulary entry becomes that token directly.
    bool ignore_merges = false;
    // Unicode normalization of the text before any splitting (Qwen's tokenizer.json: NFC).
    bool normalize_nfc = false;
    // The model's special tokens as its tokenizer_config.json (or GGUF's tokenizer.ggml.*) names
    // them, -1 when absent, and whether they are put around an encoded prompt.
    int32_t bos_id = -1, eos_id = -1, pad_id = -1;
    bool add_bos = false, add_eos = false;
    // The Jinja chat template as the model's files carry it ("" when none).
    std::string chat_template;
};

// Lets maps keyed on std::string be searched with a string_view, without allocating.
struct StringHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};

// Remembers the ids of pieces already merged; one per thread (encode itself is const). A flat
// open-addressing table of 64-bit hashes whose keys and ids live in two arenas: a lookup is one
// probe and one memcmp, with no allocation. Aligned to a cache line so that the caches of
// different threads, kept in one vector, never share one.
class alignas(64) EncodeCache {
   public:
    // Pieces this long or longer are not kept: they rarely repeat and would crowd the cache.
    static constexpr size_t kMaxPieceBytes = 64;

    const int32_t* find(std::string_view piece, size_t& n) const;
    void put(std::string_view piece, std::span<const int32_t> ids);

   private:
    struct Slot {
        uint64_t hash = 0;  // 0: empty
        uint32_t key_offset = 0, ids_offset = 0;
        uint16_t key_size = 0, n_ids = 0;
    };
    void grow();

    std::vector<Slot> slots_;
    std::string keys_;
    std::vector<int32_t> ids_;
    size_t n_used_ = 0;
};

class BpeTokenizer {
   public:
    explicit BpeTokenizer(BpeModel model);
    ~BpeTokenizer();
    BpeTokenizer(BpeTokenizer&&) noexcept;
    BpeTokenizer& operator=(BpeTokenizer&&) noexcept;

    // Appends the ids of `text` to `out`. Added tokens are matched first (leftmost, longest first
    // at the same place), then the text between them is NFC-normalized if the model says so;
    // nothing is added around the text (no BOS/EOS). Pass a cache to keep merged pieces across
    // calls; without one, a cache lives for this call only.
    void encode(std::string_view text, std::vector<int32_t>& out,
                EncodeCache* cache = nullptr) const;
    std::vector<int32_t> encode(std::string_view text) const;
    // What Hugging Face's tokenizer(text) gives: encode(text) with the model's BOS before it when
    // add_bos and its EOS after it when add_eos (Llama 3: <|begin_of_text|> first; Qwen: nothing;
    // a flag whose id is -1 adds nothing).
    // For a prompt typed by a user. A rendered chat template carries its own special tokens:
    // encode that with encode(), as HF's apply_chat_template(tokenize=True) does.
    std::vector<int32_t> encode_with_special(std::string_view text) const;
    // The same without matching added tokens: "<|endoftext|>" in the text is plain text.
    // Normalized like encode.
    void encode_ordinary(std::string_view text, std::vector<int32_t>& out,
                         EncodeCache* cache = nullptr) const;

    // The bytes of `ids` (the NFC form of what was encoded, when the model normalizes); throws
    // tandem::Error naming the first id outside the vocabulary.
    std::string decode(std::span<const int32_t> ids) const;

    // One more than the largest id (vocabulary and added tokens together).
    int32_t vocab_size() const { return int32_t(token_bytes_.size()); }
    std::optional<int32_t> token_id(std::string_view bytes) const;
    const std::vector<AddedToken>& added_tokens() const { return model_.added; }
    std::vector<int32_t> special_ids() const;
    // The end-of-text token that separates documents: <|endoftext|>, else <|end_of_text|>, else
    // </s>. Throws tandem::Error listing the special tokens when there is none of those.
    int32_t eot_id() const;
    const BpeModel& model() const { return model_; }

   private:
    struct PairTable;
    void encode_normalized(std::string_view text, std::vector<int32_t>& out,
                           EncodeCache& cache) const;
    void encode_piece(std::string_view piece, std::vector<int32_t>& out, EncodeCache& cache) const;
    void merge(std::vector<int32_t>& ids) const;
    void merge_long(std::vector<int32_t>& ids) const;

    BpeModel model_;
    Pretokenizer pretokenizer_;
    std::vector<std::string> token_bytes_;  // id -> bytes, added tokens included
    std::unordered_map<std::string, int32_t, StringHash, std::equal_to<>> by_bytes_;
    std::unique_ptr<PairTable> pairs_;
    int32_t byte_ids_[256] = {};
    // For each first byte, the added tokens that start with it, longest first: those matched in
    // the raw text, and those matched after normalization (AddedToken::normalized).
    std::vector<std::vector<int32_t>> raw_added_by_first_byte_, normalized_added_by_first_byte_;
    std::vector<std::string> added_match_;  // the text each added token matches
    bool has_normalized_added_ = false;
};

}  // namespace tandem::io

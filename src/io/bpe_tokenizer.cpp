// The BPE merge loop and the added-token scan. Ranks are looked up by the pair of token ids in a
// flat open-addressing table (no strings on the hot path); merged pieces are cached per thread.
#include "io/bpe_tokenizer.h"

#include <algorithm>
#include <cstring>
#include <queue>

#include "core/checksum.h"
#include "core/error.h"
#include "io/normalizer.h"

namespace tandem::io {

// (left id, right id) -> (rank, merged id), open addressing with linear probing. Sized to a power
// of two at most half full, so a miss ends after a probe or two.
struct BpeTokenizer::PairTable {
    struct Slot {
        uint64_t key = kEmpty;
        uint32_t rank = 0;
        int32_t merged = 0;
    };
    static constexpr uint64_t kEmpty = ~uint64_t(0);
    std::vector<Slot> slots;
    uint64_t mask = 0;

    static uint64_t key(int32_t a, int32_t b) {
        return (uint64_t(uint32_t(a)) << 32) | uint32_t(b);
    }
    size_t home(uint64_t k) const { return size_t((k * 0x9E3779B97F4A7C15ull) >> 20) & mask; }

    explicit PairTable(const std::vector<Merge>& merges) {
        size_t capacity = 1024;
        while (capacity < merges.size() * 2) capacity *= 2;
        slots.resize(capacity);
        mask = capacity - 1;
        for (size_t rank = 0; rank < merges.size(); ++rank) {
            uint64_t k = key(merges[rank].left, merges[rank].right);
            size_t i = home(k);
            while (slots[i].key != kEmpty && slots[i].key != k) i = (i + 1) & mask;
            if (slots[i].key == k) continue;  // a repeated merge keeps its first (lowest) rank
            slots[i] = {k, uint32_t(rank), merges[rank].merged};
        }
    }

    const Slot* find(int32_t a, int32_t b) const {
        uint64_t k = key(a, b);
        for (size_t i = home(k);; i = (i + 1) & mask) {
            if (slots[i].key == k) return &slots[i];
            if (slots[i].key == kEmpty) return nullptr;
        }
    }
};

namespace {

uint64_t piece_hash(std::string_view piece) {
    return xxh3_64(piece.data(), piece.size()) | 1;  // never 0, which marks an empty slot
}

// Cuts `text` at the added tokens of `index` (per first byte, longest first; match[i] is the text
// of added[i]): on_text(part) for the text between them, on_token(id) for each token, in order.
template <typename OnText, typename OnToken>
void split_at_added(std::string_view text, const std::vector<AddedToken>& added,
                    const std::vector<std::string>& match,
                    const std::vector<std::vector<int32_t>>& index, OnText&& on_text,
                    OnToken&& on_token) {
    size_t done = 0;
    for (size_t at = 0; at < text.size(); ++at) {
        const auto& candidates = index[uint8_t(text[at])];
        for (int32_t i : candidates) {
            const std::string& m = match[size_t(i)];
            if (text.compare(at, m.size(), m) != 0) continue;
            if (at > done) on_text(text.substr(done, at - done));
            on_token(added[size_t(i)].id);
            done = at + m.size();
            at = done - 1;
            break;
        }
    }
    if (done < text.size()) on_text(text.substr(done));
}

}  // namespace

const int32_t* EncodeCache::find(std::string_view piece, size_t& n) const {
    if (slots_.empty() || piece.size() >= kMaxPieceBytes) return nullptr;
    const uint64_t h = piece_hash(piece);
    const size_t mask = slots_.size() - 1;
    for (size_t i = size_t(h) & mask;; i = (i + 1) & mask) {
        const Slot& s = slots_[i];
        if (s.hash == 0) return nullptr;
        if (s.hash == h && s.key_size == piece.size() &&
            std::memcmp(keys_.data() + s.key_offset, piece.data(), piece.size()) == 0) {
            n = s.n_ids;
            return ids_.data() + s.ids_offset;
        }
    }
}

void EncodeCache::grow() {
    // Bounded memory: past 2^20 slots start afresh rather than track recency; real text refills
    // the cache with its common words quickly.
    if (slots_.size() >= (size_t(1) << 20)) {
        std::fill(slots_.begin(), slots_.end(), Slot{});
        keys_.clear();
        ids_.clear();
        n_used_ = 0;
        return;
    }
    std::vector<Slot> old = std::move(slots_);
    slots_.assign(old.empty() ? 4096 : old.size() * 2, Slot{});
    const size_t mask = slots_.size() - 1;
    for (const Slot& s : old) {
        if (s.hash == 0) continue;
        size_t i = size_t(s.hash) & mask;
        while (slots_[i].hash != 0) i = (i + 1) & mask;
        slots_[i] = s;
    }
}

void EncodeCache::put(std::string_view piece, std::span<const int32_t> ids) {
    if (piece.size() >= kMaxPieceBytes) return;  // also keeps n_ids within uint16
    if (2 * (n_used_ + 1) > slots_.size()) grow();
    const uint64_t h = piece_hash(piece);
    const size_t mask = slots_.size() - 1;
    size_t i = size_t(h) & mask;
    while (slots_[i].hash != 0) i = (i + 1) & mask;
    slots_[i] = {h, uint32_t(keys_.size()), uint32_t(ids_.size()), uint16_t(piece.size()),
                 uint16_t(ids.size())};
    keys_.append(piece);
    ids_.insert(ids_.end(), ids.begin(), ids.end());
    ++n_used_;
}

BpeTokenizer::BpeTokenizer(BpeModel model)
    : model_(std::move(model)), pretokenizer_(model_.pattern) {
    token_bytes_ = model_.tokens;
    for (const AddedToken& t : model_.added) {
        TANDEM_ASSERT(t.id >= 0, t.id);
        if (size_t(t.id) >= token_bytes_.size()) token_bytes_.resize(t.id + 1);
        token_bytes_[t.id] = t.content;
    }
    by_bytes_.reserve(model_.tokens.size());
    for (size_t id = 0; id < model_.tokens.size(); ++id)
        if (!model_.tokens[id].empty()) by_bytes_.emplace(model_.tokens[id], int32_t(id));
    for (int b = 0; b < 256; ++b) {
        auto it = by_bytes_.find(std::string(1, char(b)));
        TANDEM_ASSERT(it != by_bytes_.end(), b);
        byte_ids_[b] = it->second;
    }
    pairs_ = std::make_unique<PairTable>(model_.merges);
    // The loaders check these against the files; a model filled elsewhere must too.
    for (int32_t id : {model_.bos_id, model_.eos_id, model_.pad_id})
        TANDEM_ASSERT(id >= -1 && id < vocab_size(), id, vocab_size());

    raw_added_by_first_byte_.resize(256);
    normalized_added_by_first_byte_.resize(256);
    for (size_t i = 0; i < model_.added.size(); ++i) {
        const AddedToken& t = model_.added[i];
        // A normalized token is looked for in normalized text, so its own text is normalized
        // too (as Hugging Face does when it builds its matcher).
        added_match_.push_back(t.normalized && model_.normalize_nfc ? to_nfc(t.content)
                                                                    : t.content);
        if (t.content.empty()) continue;
        auto& index = t.normalized ? normalized_added_by_first_byte_ : raw_added_by_first_byte_;
        index[uint8_t(added_match_.back()[0])].push_back(int32_t(i));
        has_normalized_added_ |= t.normalized;
    }
    for (auto* index : {&raw_added_by_first_byte_, &normalized_added_by_first_byte_})
        for (auto& list : *index)
            std::stable_sort(list.begin(), list.end(), [&](int32_t a, int32_t b) {
                return added_match_[size_t(a)].size() > added_match_[size_t(b)].size();
            });
}

BpeTokenizer::~BpeTokenizer() = default;
BpeTokenizer::BpeTokenizer(BpeTokenizer&&) noexcept = default;
BpeTokenizer& BpeTokenizer::operator=(BpeTokenizer&&) noexcept = default;

std::vector<int32_t> BpeTokenizer::encode(std::string_view text) const {
    std::vector<int32_t> out;
    encode(text, out);
    return out;
}

void BpeTokenizer::encode(std::string_view text, std::vector<int32_t>& out,
                          EncodeCache* cache) const {
    EncodeCache local;
    if (!cache) cache = &local;
    auto push_token = [&](int32_t id) { out.push_back(id); };
    // Hugging Face's order: tokens with normalized=false on the raw text, then each part between
    // them normalized and cut at the normalized tokens.
    split_at_added(
        text, model_.added, added_match_, raw_added_by_first_byte_,
        [&](std::string_view part) {
            std::string buffer;
            if (model_.normalize_nfc) part = nfc_view(part, buffer);
            if (!has_normalized_added_) return encode_normalized(part, out, *cache);
            split_at_added(
                part, model_.added, added_match_, normalized_added_by_first_byte_,
                [&](std::string_view p) { encode_normalized(p, out, *cache); }, push_token);
        },
        push_token);
}

std::vector<int32_t> BpeTokenizer::encode_with_special(std::string_view text) const {
    std::vector<int32_t> out;
    // A flag without its token (a GGUF that asks for BOS but names none) adds nothing.
    if (model_.add_bos && model_.bos_id >= 0) out.push_back(model_.bos_id);
    encode(text, out);
    if (model_.add_eos && model_.eos_id >= 0) out.push_back(model_.eos_id);
    return out;
}

void BpeTokenizer::encode_ordinary(std::string_view text, std::vector<int32_t>& out,
                                   EncodeCache* cache) const {
    EncodeCache local;
    if (!cache) cache = &local;
    std::string buffer;
    encode_normalized(model_.normalize_nfc ? nfc_view(text, buffer) : text, out, *cache);
}

void BpeTokenizer::encode_normalized(std::string_view text, std::vector<int32_t>& out,
                                     EncodeCache& cache) const {
    if (text.empty()) return;
    // Ids go to a buffer of this thread's own and reach `out` in one copy: callers encoding in
    // parallel keep their output vectors side by side, and appending to them token by token
    // made every push_back contend for one cache line (2 threads were no faster than 1).
    thread_local std::vector<int32_t> encoded;
    encoded.clear();
    pretokenizer_.split(text, [&](std::string_view piece) { encode_piece(piece, encoded, cache); });
    out.insert(out.end(), encoded.begin(), encoded.end());
}

void BpeTokenizer::encode_piece(std::string_view piece, std::vector<int32_t>& out,
                                EncodeCache& cache) const {
    if (piece.size() == 1) {
        out.push_back(byte_ids_[uint8_t(piece[0])]);
        return;
    }
    size_t n = 0;
    if (const int32_t* ids = cache.find(piece, n)) {
        out.insert(out.end(), ids, ids + n);
        return;
    }
    if (model_.ignore_merges) {
        if (auto it = by_bytes_.find(piece); it != by_bytes_.end()) {
            out.push_back(it->second);
            cache.put(piece, {&it->second, 1});
            return;
        }
    }
    thread_local std::vector<int32_t> ids;
    ids.clear();
    for (char b : piece) ids.push_back(byte_ids_[uint8_t(b)]);
    // Scanning all pairs per merge is quadratic but fastest for ordinary words; a long run of
    // one class (a megabyte of digits or spaces) goes through the heap instead.
    if (ids.size() <= 128) {
        merge(ids);
    } else {
        merge_long(ids);
    }
    out.insert(out.end(), ids.begin(), ids.end());
    cache.put(piece, ids);
}

// Repeatedly merges the adjacent pair of lowest rank, the leftmost one on a tie: the same order
// as Hugging Face's BPE and tiktoken.
void BpeTokenizer::merge(std::vector<int32_t>& ids) const {
    thread_local std::vector<const PairTable::Slot*> slot;  // slot[i]: the pair (ids[i], ids[i+1])
    slot.resize(ids.size());
    for (size_t i = 0; i + 1 < ids.size(); ++i) slot[i] = pairs_->find(ids[i], ids[i + 1]);
    size_t n = ids.size();
    while (n > 1) {
        size_t best = n;
        uint32_t best_rank = UINT32_MAX;
        for (size_t i = 0; i + 1 < n; ++i)
            if (slot[i] && slot[i]->rank < best_rank) best_rank = slot[i]->rank, best = i;
        if (best == n) break;
        ids[best] = slot[best]->merged;
        for (size_t i = best + 1; i + 1 < n; ++i) ids[i] = ids[i + 1], slot[i] = slot[i + 1];
        --n;
        if (best + 1 < n) slot[best] = pairs_->find(ids[best], ids[best + 1]);
        if (best > 0) slot[best - 1] = pairs_->find(ids[best - 1], ids[best]);
    }
    ids.resize(n);
}

// The same merges in O(n log n): symbols in a linked list, candidate pairs in a min-heap of
// (rank, position); an entry whose symbols have changed since it was pushed is skipped.
void BpeTokenizer::merge_long(std::vector<int32_t>& ids) const {
    const size_t n = ids.size();
    std::vector<int64_t> prev(n), next(n);
    for (size_t i = 0; i < n; ++i) prev[i] = int64_t(i) - 1, next[i] = int64_t(i) + 1;
    struct Candidate {
        uint32_t rank;
        uint32_t left;
        int32_t left_id, right_id;
        bool operator>(const Candidate& o) const {
            return rank != o.rank ? rank > o.rank : left > o.left;
        }
    };
    std::priority_queue<Candidate, std::vector<Candidate>, std::greater<>> heap;
    auto push = [&](int64_t left) {
        if (left < 0 || next[left] >= int64_t(n)) return;
        if (const auto* s = pairs_->find(ids[left], ids[next[left]]))
            heap.push({s->rank, uint32_t(left), ids[left], ids[next[left]]});
    };
    for (size_t i = 0; i + 1 < n; ++i) push(int64_t(i));
    std::vector<bool> alive(n, true);
    while (!heap.empty()) {
        Candidate c = heap.top();
        heap.pop();
        int64_t right = next[c.left];
        if (!alive[c.left] || right >= int64_t(n) || ids[c.left] != c.left_id ||
            ids[right] != c.right_id)
            continue;
        ids[c.left] = pairs_->find(c.left_id, c.right_id)->merged;
        alive[right] = false;
        next[c.left] = next[right];
        if (next[right] < int64_t(n)) prev[next[right]] = c.left;
        push(prev[c.left]);
        push(c.left);
    }
    size_t kept = 0;
    for (size_t i = 0; i < n; ++i)
        if (alive[i]) ids[kept++] = ids[i];
    ids.resize(kept);
}

std::string BpeTokenizer::decode(std::span<const int32_t> ids) const {
    std::string out;
    for (int32_t id : ids) {
        if (id < 0 || id >= vocab_size() || token_bytes_[id].empty())
            throw Error("token id ", id, " is not in the vocabulary (", vocab_size(), " ids)");
        out += token_bytes_[id];
    }
    return out;
}

std::optional<int32_t> BpeTokenizer::token_id(std::string_view bytes) const {
    for (const AddedToken& t : model_.added)
        if (t.content == bytes) return t.id;
    if (auto it = by_bytes_.find(bytes); it != by_bytes_.end()) return it->second;
    return std::nullopt;
}

std::vector<int32_t> BpeTokenizer::special_ids() const {
    std::vector<int32_t> ids;
    for (const AddedToken& t : model_.added)
        if (t.is_special) ids.push_back(t.id);
    return ids;
}

int32_t BpeTokenizer::eot_id() const {
    for (const char* name : {"<|endoftext|>", "<|end_of_text|>", "</s>"})
        for (const AddedToken& t : model_.added)
            if (t.content == name) return t.id;
    std::string specials;
    for (const AddedToken& t : model_.added) specials += (specials.empty() ? "" : ", ") + t.content;
    throw Error(
        "the tokenizer has no end-of-text token (<|endoftext|>, <|end_of_text|> or </s>); "
        "its special tokens are: ",
        specials.empty() ? "none" : specials, " (train one with --special '<|endoftext|>')");
}

}  // namespace tandem::io

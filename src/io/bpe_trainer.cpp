// BPE training in two phases.
//  1. Counting: plain text files are read in chunks cut just after a newline that precedes a non-space byte
//     (where the GPT-2 pattern always ends a piece, so cutting changes no piece), split by the
//     pattern on all cores, and distinct pieces counted, one hash map per thread. Documents of
//     JSON Lines, or between separator lines, are counted one by one.
//  2. Merging: each distinct piece is a sequence of ids with a count. Pair counts live in a hash
//     map, the pieces holding a pair in an index, the best pair in a max-heap with lazy updates.
//     A merge rewrites only the pieces that hold its pair and applies the pair-count changes of
//     those pieces, so one merge costs what it touches, not a recount of the corpus.
#include "io/bpe_trainer.h"

#include <algorithm>
#include <queue>
#include <unordered_map>
#include <unordered_set>

#include "core/error.h"
#include "core/log.h"
#include "io/parallel.h"
#include "io/pretokenizer.h"

namespace tandem::io {

namespace {

using WordCounts = std::unordered_map<std::string, int64_t, StringHash, std::equal_to<>>;

uint64_t pair_key(int32_t a, int32_t b) {
    return (uint64_t(uint32_t(a)) << 32) | uint32_t(b);
}

// Where to end a chunk: just after the last "\n" that is followed by a non-space byte.
size_t safe_cut(const std::string& buffer) {
    for (size_t i = buffer.size(); i-- > 1;) {
        char next = buffer[i];
        if (buffer[i - 1] == '\n' && next != ' ' && next != '\t' && next != '\n' && next != '\r')
            return i;
    }
    return 0;
}

WordCounts count_words(const std::vector<std::string>& files, const BpeTrainerOptions& options) {
    const Pretokenizer pretokenizer{std::string(kGpt2Pattern)};
    constexpr size_t kChunk = 1 << 20;
    const int n_threads = thread_count(options.n_threads);
    std::vector<WordCounts> counts(static_cast<size_t>(n_threads));
    const int64_t total = total_input_bytes(files);
    int64_t done = 0, pending = 0;
    std::vector<std::string> chunks;
    auto count_chunks = [&] {
        parallel_for(chunks.size(), n_threads, [&](size_t i, int thread) {
            WordCounts& mine = counts[size_t(thread)];
            pretokenizer.split(chunks[i], [&](std::string_view piece) {
                auto it = mine.find(piece);
                if (it == mine.end()) {
                    mine.emplace(std::string(piece), 1);
                } else {
                    ++it->second;
                }
            });
        });
        chunks.clear();
        pending = 0;
        if (options.on_read) options.on_read(done, total);
    };
    auto add_chunk = [&](std::string chunk) {
        pending += int64_t(chunk.size());
        chunks.push_back(std::move(chunk));
        if (pending >= int64_t(4 * kChunk) * n_threads) count_chunks();
    };
    const DocumentFormat& format = options.format;
    if (format.format != InputFormat::Text || !format.separator.empty()) {
        // Documents (jsonl fields, pieces between separators) are counted one by one, so that
        // no piece spans two of them.
        DocumentReader reader(files, format);
        std::string doc;
        while (reader.next(doc)) {
            done = reader.bytes_read();
            add_chunk(std::move(doc));
        }
        done = reader.bytes_read();
        count_chunks();
    } else {
        // A whole file is one document, and may be larger than memory: it is read in chunks.
        for (const std::string& f : files) {
            InputStream stream(f);
            std::istream& in = stream.get();
            std::string buffer, carry;
            while (in) {
                buffer.resize(kChunk);
                in.read(buffer.data(), std::streamsize(kChunk));
                buffer.resize(size_t(in.gcount()));
                done += int64_t(buffer.size());
                carry += buffer;
                size_t cut = in ? safe_cut(carry) : carry.size();  // a file ends a chunk
                if (cut == 0) continue;
                add_chunk(carry.substr(0, cut));
                carry.erase(0, cut);
            }
            if (in.bad()) throw Error(f, ": read failed");
        }
        count_chunks();
    }
    for (size_t t = 1; t < counts.size(); ++t)
        for (auto& [word, n] : counts[t]) counts[0][word] += n;
    return std::move(counts[0]);
}

struct Word {
    std::vector<int32_t> ids;
    int64_t count;
};

// Highest count first; among equal counts the smaller pair of ids, so training is deterministic.
struct HeapEntry {
    int64_t count;
    uint64_t pair;
    bool operator<(const HeapEntry& o) const {
        return count != o.count ? count < o.count : pair > o.pair;
    }
};

}  // namespace

BpeModel train_bpe(const std::vector<std::string>& inputs, const BpeTrainerOptions& options) {
    const int64_t n_special = int64_t(options.specials.size());
    const int64_t n_merges = options.vocab_size - 256 - n_special;
    if (n_merges < 0)
        throw Error("--vocab-size ", options.vocab_size, " is too small: 256 byte tokens and ",
                    n_special, " special tokens need ", 256 + n_special);
    std::unordered_set<std::string> seen_specials;
    for (const std::string& s : options.specials)
        if (s.empty() || !seen_specials.insert(s).second)
            throw Error("special token '", s, "' is empty or given twice");
    const std::vector<std::string> files = expand_inputs(inputs);
    if (files.empty()) throw Error("no training input files in: ", inputs.empty() ? "(none)" : inputs[0]);

    BpeModel model;
    for (int b = 0; b < 256; ++b) model.tokens.push_back(std::string(1, char(b)));

    WordCounts counted = count_words(files, options);
    if (counted.empty()) throw Error("the training inputs hold no text (", files[0], " ...)");
    // Sorted so ids and tie-breaks never depend on hash-map iteration order.
    std::vector<std::pair<std::string, int64_t>> sorted(counted.begin(), counted.end());
    counted = {};
    std::sort(sorted.begin(), sorted.end());
    std::vector<Word> words;
    words.reserve(sorted.size());
    for (auto& [text, n] : sorted) {
        Word w{{}, n};
        for (char c : text) w.ids.push_back(int32_t(uint8_t(c)));
        if (w.ids.size() > 1) words.push_back(std::move(w));
    }
    sorted = {};

    std::unordered_map<uint64_t, int64_t> pair_count;
    std::unordered_map<uint64_t, std::vector<uint32_t>> where;
    for (uint32_t w = 0; w < words.size(); ++w) {
        const auto& ids = words[w].ids;
        for (size_t i = 0; i + 1 < ids.size(); ++i) {
            uint64_t k = pair_key(ids[i], ids[i + 1]);
            pair_count[k] += words[w].count;
            auto& list = where[k];
            if (list.empty() || list.back() != w) list.push_back(w);
        }
    }
    std::priority_queue<HeapEntry> heap;
    for (const auto& [k, n] : pair_count) heap.push({n, k});

    std::vector<uint32_t> stamp(words.size(), UINT32_MAX);
    std::unordered_map<uint64_t, int64_t> delta;
    std::vector<int32_t> merged_ids;
    while (int64_t(model.merges.size()) < n_merges && !heap.empty()) {
        HeapEntry top = heap.top();
        heap.pop();
        auto it = pair_count.find(top.pair);
        int64_t current = it == pair_count.end() ? 0 : it->second;
        if (current != top.count) {  // stale: counts fell since this entry was pushed
            if (current > 0) heap.push({current, top.pair});
            continue;
        }
        if (current < options.min_pair_count) break;
        const int32_t a = int32_t(top.pair >> 32), b = int32_t(uint32_t(top.pair));
        const int32_t merged = int32_t(model.tokens.size());
        model.tokens.push_back(model.tokens[a] + model.tokens[b]);
        model.merges.push_back({a, b, merged});

        delta.clear();
        const uint32_t merge_no = uint32_t(model.merges.size());
        std::vector<uint32_t> holders = std::move(where[top.pair]);
        where.erase(top.pair);
        for (uint32_t w : holders) {
            if (stamp[w] == merge_no) continue;
            stamp[w] = merge_no;
            Word& word = words[w];
            const auto& ids = word.ids;
            merged_ids.clear();
            bool changed = false;
            for (size_t i = 0; i < ids.size(); ++i) {
                if (i + 1 < ids.size() && ids[i] == a && ids[i + 1] == b) {
                    merged_ids.push_back(merged);
                    ++i;
                    changed = true;
                } else {
                    merged_ids.push_back(ids[i]);
                }
            }
            if (!changed) continue;  // the index may list pieces that lost the pair already
            for (size_t i = 0; i + 1 < ids.size(); ++i)
                delta[pair_key(ids[i], ids[i + 1])] -= word.count;
            for (size_t i = 0; i + 1 < merged_ids.size(); ++i) {
                uint64_t k = pair_key(merged_ids[i], merged_ids[i + 1]);
                delta[k] += word.count;
                if (merged_ids[i] == merged || merged_ids[i + 1] == merged) {
                    auto& list = where[k];
                    if (list.empty() || list.back() != w) list.push_back(w);
                }
            }
            word.ids.swap(merged_ids);
        }
        for (const auto& [k, d] : delta) {
            if (d == 0) continue;
            int64_t& n = pair_count[k];
            n += d;
            if (d > 0) heap.push({n, k});
            if (n == 0) pair_count.erase(k);
        }
    }
    if (int64_t(model.merges.size()) < n_merges)
        log_warn("tokenizer training stopped at ", model.merges.size(), " merges of ", n_merges,
                 ": no pair occurs ", options.min_pair_count,
                 " times any more (the vocabulary has ",
                 model.tokens.size() + options.specials.size(), " tokens; more text gives more)");
    int32_t next_id = int32_t(model.tokens.size());
    for (const std::string& s : options.specials) model.added.push_back({s, next_id++, true});
    model.pattern = kGpt2Pattern;
    return model;
}

}  // namespace tandem::io

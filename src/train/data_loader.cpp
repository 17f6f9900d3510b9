// DataLoader. Windows start every T tokens inside a shard and never cross shards (the tail of a
// shard shorter than T+1 is not used); they are numbered shard by shard and located by a binary
// search over the shards' first window numbers, so no per-window table is kept. The epoch's order
// is a Fisher-Yates shuffle driven by Philox keyed (seed, DataOrder, step = epoch): a pure function
// of those, so a cursor is all a checkpoint needs to resume the stream exactly.
#include "train/data_loader.h"

#include <algorithm>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/rng.h"
#include "io/atomic_file.h"

namespace tandem::train {

namespace fs = std::filesystem;
using nlohmann::json;

std::string cursor_to_json(const DataCursor& c) {
    return json{{"epoch", c.epoch}, {"position", c.position}}.dump();
}

DataCursor cursor_from_json(const std::string& text) {
    try {
        json j = json::parse(text);
        return {j.at("epoch").get<uint64_t>(), j.at("position").get<uint64_t>()};
    } catch (const json::exception& e) {
        throw Error("data cursor '", text, "' is not {\"epoch\": n, \"position\": n}: ", e.what());
    }
}

DataLoader::DataLoader(const DataLoaderOptions& o) : options_(o) {
    if (o.batch_size < 1 || o.seq_len < 1)
        throw Error("data loader: batch size ", o.batch_size, " and sequence length ", o.seq_len,
                    " must be positive");
    if (o.n_ranks < 1 || o.rank < 0 || o.rank >= o.n_ranks)
        throw Error("data loader: rank ", o.rank, " is outside [0, ", o.n_ranks, ")");
    const std::string meta_path = (fs::path(o.dir) / "meta.json").string();
    if (!fs::exists(meta_path))
        throw Error(meta_path, ": missing (is ", o.dir, " a tandem prepare output?)");
    json meta;
    try {
        meta = json::parse(io::read_file(meta_path));
        vocab_size_ = meta.at("vocab_size").get<int64_t>();
    } catch (const json::exception& e) {
        throw Error(meta_path, ": malformed: ", e.what());
    }
    if (o.vocab_size > 0 && o.vocab_size != vocab_size_)
        throw Error(meta_path, ": the shards were made with a tokenizer of ", vocab_size_,
                    " ids but the model's has ", o.vocab_size,
                    " (re-run tandem prepare with the "
                    "model's tokenizer)");
    const char* want_split = o.split == Split::Train ? "train" : "val";
    const uint64_t row = uint64_t(o.seq_len) + 1;
    try {
        for (const json& s : meta.at("shards")) {
            if (s.at("split").get<std::string>() != want_split) continue;
            io::MappedShard shard((fs::path(o.dir) / s.at("file").get<std::string>()).string());
            const io::ShardHeader& h = shard.header();
            if (int64_t(h.vocab_size) != vocab_size_)
                throw Error(shard.path(), ": made with a tokenizer of ", h.vocab_size,
                            " ids but meta.json says ", vocab_size_);
            if (h.n_tokens != s.at("n_tokens").get<uint64_t>())
                throw Error(shard.path(), ": holds ", h.n_tokens, " tokens but meta.json says ",
                            s.at("n_tokens").get<uint64_t>());
            if (o.verify_checksums) shard.verify();
            first_window_.push_back(uint64_t(n_windows_));
            if (h.n_tokens >= row) n_windows_ += int64_t((h.n_tokens - 1) / uint64_t(o.seq_len));
            n_tokens_ += int64_t(h.n_tokens);
            shards_.push_back(std::move(shard));
        }
    } catch (const json::exception& e) {
        throw Error(meta_path, ": malformed shard list: ", e.what());
    }
    first_window_.push_back(uint64_t(n_windows_));
    if (n_windows_ < o.batch_size * o.n_ranks)
        throw Error(o.dir, ": the ", want_split, " split has ", n_tokens_, " tokens, ", n_windows_,
                    " windows of ", row, " tokens, fewer than one batch of ", o.batch_size, " x ",
                    o.n_ranks, " ranks (use a smaller --batch-size or --seq-len, or more data)");
}

void DataLoader::shuffle_for(uint64_t epoch) {
    if (order_epoch_ == epoch) return;
    const uint64_t n = uint64_t(n_windows_);
    order_.resize(n);
    for (uint64_t i = 0; i < n; ++i) order_[i] = i;
    RngKey key{options_.seed, RngPurpose::DataOrder, 0, uint32_t(epoch)};
    // Two 32-bit draws per swap: a 64-bit number keeps the modulo bias negligible at any n.
    for (uint64_t i = n - 1; i > 0; --i) {
        uint64_t r = (uint64_t(random_u32(key, 2 * i)) << 32) | random_u32(key, 2 * i + 1);
        std::swap(order_[i], order_[r % (i + 1)]);
    }
    order_epoch_ = epoch;
}

void DataLoader::copy_window(uint64_t window, std::span<int32_t> row) const {
    size_t shard = size_t(std::upper_bound(first_window_.begin(), first_window_.end(), window) -
                          first_window_.begin()) -
                   1;
    uint64_t first = (window - first_window_[shard]) * uint64_t(options_.seq_len);
    shards_[shard].copy_tokens(first, row);
}

void DataLoader::next_batch(std::span<int32_t> tokens) {
    const size_t row = size_t(options_.seq_len) + 1;
    TANDEM_ASSERT(tokens.size() == size_t(options_.batch_size) * row, tokens.size(), row);
    const uint64_t n = uint64_t(n_windows_), B = uint64_t(options_.batch_size);
    for (uint64_t b = 0; b < B; ++b) {
        uint64_t at = cursor_.position + uint64_t(options_.rank) * B + b;
        shuffle_for(cursor_.epoch + at / n);
        copy_window(order_[at % n], tokens.subspan(size_t(b) * row, row));
    }
    cursor_.position += B * uint64_t(options_.n_ranks);
    cursor_.epoch += cursor_.position / n;
    cursor_.position %= n;
}

std::vector<int32_t> DataLoader::next_batch() {
    std::vector<int32_t> tokens(size_t(options_.batch_size) * size_t(options_.seq_len + 1));
    next_batch(tokens);
    return tokens;
}

void DataLoader::fixed_batch(int64_t index, std::span<int32_t> tokens) const {
    const size_t row = size_t(options_.seq_len) + 1;
    TANDEM_ASSERT(tokens.size() == size_t(options_.batch_size) * row, tokens.size(), row);
    TANDEM_ASSERT(index >= 0 && index < n_fixed_batches(), index, n_fixed_batches());
    for (int64_t b = 0; b < options_.batch_size; ++b)
        copy_window(uint64_t(index * options_.batch_size + b),
                    tokens.subspan(size_t(b) * row, row));
}

void DataLoader::set_cursor(const DataCursor& cursor) {
    if (cursor.position >= uint64_t(n_windows_))
        throw Error("data cursor position ", cursor.position, " is past the ", n_windows_,
                    " windows of ", options_.dir,
                    " (was the checkpoint made with other data or "
                    "another --seq-len?)");
    cursor_ = cursor;
}

}  // namespace tandem::train

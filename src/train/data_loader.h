// Feeds training: memory-maps the token shards of one split written by `tandem prepare`,
// checks them, and hands out [B, T+1] windows of token ids in an order shuffled per epoch by
// (seed, epoch). Its cursor is a small struct saved with checkpoints, so a resumed run reads
// exactly the windows it would have read.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "io/token_shards.h"

namespace tandem::train {

enum class Split { Train, Val };

// Where the loader stands: `position` windows of epoch `epoch` have been handed out.
struct DataCursor {
    uint64_t epoch = 0;
    uint64_t position = 0;
    bool operator==(const DataCursor&) const = default;
};

std::string cursor_to_json(const DataCursor& cursor);
// Throws tandem::Error when `text` is not {"epoch": n, "position": n}.
DataCursor cursor_from_json(const std::string& text);

struct DataLoaderOptions {
    std::string dir;  // a `tandem prepare` output: meta.json + shards
    Split split = Split::Train;
    int64_t batch_size = 1;  // B
    int64_t seq_len = 1;     // T: each row holds T + 1 ids (inputs and shifted targets)
    uint64_t seed = 0;
    // Data parallelism: every rank shares the seed and the cursor and takes its own B windows
    // of each global batch of n_ranks * B (rank r: windows r*B .. r*B + B-1 of it).
    int rank = 0;
    int n_ranks = 1;
    // The vocabulary size of the model's tokenizer; shards made with another one are refused.
    // 0: take meta.json's.
    int64_t vocab_size = 0;
    bool verify_checksums = true;  // hash every shard once at open
};

class DataLoader {
   public:
    // Throws tandem::Error naming the file for a missing or malformed meta.json, a missing,
    // truncated or corrupted shard, a vocabulary mismatch, or a split too small for one window.
    explicit DataLoader(const DataLoaderOptions& options);

    // tokens[B, T+1], row-major: this rank's B windows of the next global batch, in this
    // epoch's order (continuing into the next epoch when this one runs out); advances the cursor
    // by the global batch, n_ranks * B windows.
    void next_batch(std::span<int32_t> tokens);
    std::vector<int32_t> next_batch();

    // tokens[B, T+1]: batch `index` of a fixed, unshuffled sequence of windows (for evaluation:
    // the same batches every time, whatever the cursor).
    void fixed_batch(int64_t index, std::span<int32_t> tokens) const;
    int64_t n_fixed_batches() const { return n_windows() / options_.batch_size; }

    const DataCursor& cursor() const { return cursor_; }
    void set_cursor(const DataCursor& cursor);
    int64_t n_windows() const { return n_windows_; }
    int64_t vocab_size() const { return vocab_size_; }
    int64_t n_tokens() const { return n_tokens_; }

   private:
    void copy_window(uint64_t window, std::span<int32_t> row) const;
    void shuffle_for(uint64_t epoch);

    DataLoaderOptions options_;
    std::vector<io::MappedShard> shards_;
    // Window w lies in the shard s with first_window_[s] <= w < first_window_[s + 1].
    std::vector<uint64_t> first_window_;
    int64_t n_windows_ = 0;
    std::vector<uint64_t> order_;  // a permutation of window indices, for epoch order_epoch_
    uint64_t order_epoch_ = UINT64_MAX;
    DataCursor cursor_;
    int64_t vocab_size_ = 0;
    int64_t n_tokens_ = 0;
};

}  // namespace tandem::train

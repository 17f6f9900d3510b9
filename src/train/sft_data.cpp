// Packing fine-tuning examples into rows, the held-out split, and the cursor over packed epochs.
#include "train/sft_data.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "core/rng.h"
#include "model/model.h"

namespace tandem::train {

PackedRows pack_sequences(std::span<const SftSequence> sequences, std::span<const uint32_t> order,
                          int64_t T, int32_t pad_id) {
    PackedRows rows;
    rows.T = T;
    std::vector<int32_t> slots;  // the row being filled: up to T + 1 ids
    std::vector<uint8_t> learned;
    const auto flush = [&] {
        if (slots.empty()) return;
        const int64_t n = int64_t(slots.size());
        for (int64_t t = 0; t < T; ++t) {
            const bool has_target = t + 1 < n;
            rows.tokens.push_back(t < n ? slots[t] : pad_id);
            rows.targets.push_back(has_target ? slots[t + 1] : model::kIgnoreIndex);
            rows.loss_weights.push_back(has_target && learned[t + 1] ? 1.0f : 0.0f);
        }
        rows.n_real += std::min(n, T);
        ++rows.n_rows;
        slots.clear();
        learned.clear();
    };
    for (uint32_t i : order) {
        const SftSequence& s = sequences[i];
        TANDEM_ASSERT(s.tokens.size() >= 2 && int64_t(s.tokens.size()) <= T + 1, s.tokens.size(),
                      T);
        if (int64_t(slots.size() + s.tokens.size()) > T + 1) flush();
        slots.insert(slots.end(), s.tokens.begin(), s.tokens.end());
        learned.insert(learned.end(), s.is_learned.begin(), s.is_learned.end());
        ++rows.n_examples;
    }
    flush();
    return rows;
}

namespace {

// 0 .. n - 1 sorted by a 64-bit random key each: ties are vanishingly rare and broken by index.
std::vector<uint32_t> random_order(size_t n, const RngKey& key) {
    std::vector<std::pair<uint64_t, uint32_t>> keyed(n);
    for (size_t i = 0; i < n; ++i)
        keyed[i] = {(uint64_t(random_u32(key, 2 * i)) << 32) | random_u32(key, 2 * i + 1),
                    uint32_t(i)};
    std::sort(keyed.begin(), keyed.end());
    std::vector<uint32_t> order(n);
    for (size_t i = 0; i < n; ++i) order[i] = keyed[i].second;
    return order;
}

}  // namespace

std::vector<uint32_t> epoch_order(size_t n, uint64_t seed, uint64_t epoch) {
    return random_order(n, {seed, RngPurpose::DataOrder, 0, uint32_t(epoch)});
}

SftSplit split_examples(std::vector<SftSequence> sequences, double val_fraction, uint64_t seed) {
    const size_t n = sequences.size();
    size_t n_val = size_t(std::llround(val_fraction * double(n)));
    if (val_fraction > 0 && n >= 2) n_val = std::clamp<size_t>(n_val, 1, n - 1);
    // Rank 1 of the data-order stream: a stream of its own, apart from the epochs' (rank 0).
    const std::vector<uint32_t> order = random_order(n, {seed, RngPurpose::DataOrder, 1, 0});
    std::vector<bool> is_val(n, false);
    for (size_t i = 0; i < n_val; ++i) is_val[order[i]] = true;
    SftSplit split;
    for (size_t i = 0; i < n; ++i)
        (is_val[i] ? split.val : split.train).push_back(std::move(sequences[i]));
    return split;
}

SftRunData::SftRunData(std::shared_ptr<const SftSplit> split, const RunDataShape& shape,
                       uint64_t seed, int32_t pad_id, std::string tokenizer_json,
                       std::string tokenizer_config_json, int64_t vocab_size)
    : split_(std::move(split)),
      shape_(shape),
      seed_(seed),
      pad_id_(pad_id),
      tokenizer_json_(std::move(tokenizer_json)),
      tokenizer_config_json_(std::move(tokenizer_config_json)),
      vocab_size_(vocab_size) {
    if (split_->train.empty()) throw Error("fine-tuning data: no training examples");
    std::vector<uint32_t> in_order(split_->val.size());
    for (size_t i = 0; i < in_order.size(); ++i) in_order[i] = uint32_t(i);
    val_rows_ = pack_sequences(split_->val, in_order, shape_.seq_len, pad_id_);
}

const PackedRows& SftRunData::rows_of_epoch(uint64_t epoch) {
    auto it = epochs_.find(epoch);
    if (it != epochs_.end()) return it->second;
    while (!epochs_.empty() && epochs_.begin()->first + 1 < epoch) epochs_.erase(epochs_.begin());
    const std::vector<uint32_t> order = epoch_order(split_->train.size(), seed_, epoch);
    return epochs_[epoch] = pack_sequences(split_->train, order, shape_.seq_len, pad_id_);
}

void SftRunData::copy_row(const PackedRows* from, int64_t row, Batch& batch, int64_t b) const {
    const int64_t T = shape_.seq_len;
    for (int64_t t = 0; t < T; ++t) {
        const int64_t i = b * T + t;
        const int64_t j = row * T + t;
        batch.tokens[i] = from ? from->tokens[j] : pad_id_;
        batch.targets[i] = from ? from->targets[j] : model::kIgnoreIndex;
        batch.loss_weights[i] = from ? from->loss_weights[j] : 0.0f;
    }
}

void SftRunData::next(Batch& batch) {
    const int64_t B = shape_.local_batch;
    batch.resize(B, shape_.seq_len, true);
    // This rank's rows of the global batch are rows rank * B .. rank * B + B - 1 past the cursor.
    DataCursor at = cursor_;
    uint64_t skip = uint64_t(shape_.rank) * uint64_t(B);
    const uint64_t global = uint64_t(B) * uint64_t(shape_.n_ranks);
    const auto advance = [&](DataCursor& c, uint64_t n) {
        c.position += n;
        for (uint64_t rows = uint64_t(rows_of_epoch(c.epoch).n_rows); c.position >= rows;
             rows = uint64_t(rows_of_epoch(c.epoch).n_rows)) {
            c.position -= rows;
            ++c.epoch;
        }
    };
    advance(at, skip);
    for (int64_t b = 0; b < B; ++b) {
        copy_row(&rows_of_epoch(at.epoch), int64_t(at.position), batch, b);
        advance(at, 1);
    }
    advance(cursor_, global);
}

int64_t SftRunData::n_eval_batches() const {
    const int64_t global = shape_.local_batch * shape_.n_ranks;
    return (val_rows_.n_rows + global - 1) / global;
}

void SftRunData::eval_batch(int64_t index, Batch& batch) {
    const int64_t B = shape_.local_batch;
    batch.resize(B, shape_.seq_len, true);
    const int64_t first = index * B * shape_.n_ranks + shape_.rank * B;
    for (int64_t b = 0; b < B; ++b) {
        const int64_t row = first + b;
        copy_row(row < val_rows_.n_rows ? &val_rows_ : nullptr, row, batch, b);
    }
}

}  // namespace tandem::train

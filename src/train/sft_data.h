// Fine-tuning batches: rendered examples (sft_render.h) packed end to end into rows of seq_len
// targets, the held-out split, and the RunData the trainer reads them through, with a cursor
// that makes a resumed run read exactly the rows it would have read.
//
// Packing: examples go into a row one after another while they fit (next fit), in an order
// shuffled per epoch by (seed, epoch), and the rest of a row is padding whose targets are
// ignored. An example never straddles two rows. Attention is not masked at example boundaries
// (the model has no such mask): a later example in a row sees the earlier ones, as in the usual
// packed fine-tuning; the target that starts an example is never learned, and positions run on
// across the row.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "train/sft_render.h"
#include "train/trainer.h"

namespace tandem::train {

struct PackedRows {
    int64_t T = 0, n_rows = 0;
    std::vector<int32_t> tokens, targets;  // [n_rows, T]; targets kIgnoreIndex in the padding
    std::vector<float> loss_weights;       // [n_rows, T]: 1 where the target is learned, else 0
    int64_t n_examples = 0, n_real = 0;    // examples packed; positions that are not padding
};

// Packs sequences[order[0]], sequences[order[1]], ... into rows of T inputs (T + 1 ids each).
// Every sequence must hold 2 to T + 1 ids (checked by the caller: its line is reported).
PackedRows pack_sequences(std::span<const SftSequence> sequences, std::span<const uint32_t> order,
                          int64_t T, int32_t pad_id);

// 0 .. n - 1 shuffled by (seed, epoch): the order of an epoch's examples.
std::vector<uint32_t> epoch_order(size_t n, uint64_t seed, uint64_t epoch);

struct SftSplit {
    std::vector<SftSequence> train, val;
};
// Holds out round(val_fraction * n) examples (at least 1 when val_fraction > 0 and n >= 2),
// picked by the seed, so that the same data and seed always give the same split.
SftSplit split_examples(std::vector<SftSequence> sequences, double val_fraction, uint64_t seed);

// The trainer's view of the fine-tuning data. Training rows: epoch e is the train split packed
// in epoch_order(e); the cursor counts rows of the global batch stream, each rank taking its
// local_batch rows of every global batch. Evaluation: the held-out split packed in file order,
// in batches of batch_size rows, the last one padded with rows that count for nothing.
class SftRunData final : public RunData, public BatchSource {
   public:
    // tokenizer_json and tokenizer_config_json go into the checkpoints (io/tokenizer_files.h,
    // io/tokenizer_config.h): the fine-tuned model keeps its chat template and EOS.
    SftRunData(std::shared_ptr<const SftSplit> split, const RunDataShape& shape, uint64_t seed,
               int32_t pad_id, std::string tokenizer_json, std::string tokenizer_config_json,
               int64_t vocab_size);

    BatchSource& batches() override { return *this; }
    void next(Batch& batch) override;
    DataCursor cursor() const override { return cursor_; }
    void set_cursor(const DataCursor& cursor) override { cursor_ = cursor; }
    int64_t n_eval_batches() const override;
    void eval_batch(int64_t index, Batch& batch) override;
    const std::string& tokenizer_json() const override { return tokenizer_json_; }
    std::string tokenizer_config_json() const override { return tokenizer_config_json_; }
    int64_t vocab_size() const override { return vocab_size_; }

    const PackedRows& rows_of_epoch(uint64_t epoch);
    const PackedRows& val_rows() const { return val_rows_; }

   private:
    // Row `row` of `from` (or padding when from is null) into row b of `batch`.
    void copy_row(const PackedRows* from, int64_t row, Batch& batch, int64_t b) const;

    std::shared_ptr<const SftSplit> split_;
    RunDataShape shape_;
    uint64_t seed_;
    int32_t pad_id_;
    std::string tokenizer_json_, tokenizer_config_json_;
    int64_t vocab_size_;
    DataCursor cursor_;
    std::map<uint64_t, PackedRows>
        epochs_;  // the cursor's epoch and the next (a batch may span both)
    PackedRows val_rows_;
};

}  // namespace tandem::train

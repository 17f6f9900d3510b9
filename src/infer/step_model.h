// The contract between the engine and a model that runs one step of many sequences: the engine
// (scheduler, page pool, samplers) decides which tokens of which sequences run in a step and
// where their keys and values live in the paged cache; a StepModel runs them and returns the
// logits the engine asked for. PagedForward is the real one; tests drive the engine with fakes.
#pragma once

#include <cstdint>
#include <span>
#include <utility>
#include <vector>

namespace tandem::infer {

// One step's tokens, flattened: N rows from any number of sequences, each sequence's rows
// consecutive and in position order (a prefill chunk is several rows, a decode step one).
// The keys and values of row n are written at position positions[n] of sequence seq_index[n],
// and row n attends to that sequence's positions [0, positions[n]], its own included.
struct StepBatch {
    std::vector<int32_t> tokens;      // [N] token ids
    std::vector<int32_t> positions;   // [N] absolute position of each token in its sequence
    std::vector<int32_t> seq_index;   // [N] row of page_table that holds the token's sequence
    // [n_seqs, pages_per_seq] row-major: position p of sequence s is slot p % page_size of
    // page page_table[s * pages_per_seq + p / page_size]; entries past a sequence's end are -1.
    std::vector<int32_t> page_table;
    int64_t n_seqs = 0;
    int64_t pages_per_seq = 0;
    std::vector<int32_t> logit_rows;  // rows whose logits are wanted, ascending
    // Pages whose keys and values (every layer's, every slot) are copied, (from, to), before the
    // rows run: a sequence that shares the first part of a cached page goes on in its own copy.
    std::vector<std::pair<int32_t, int32_t>> page_copies;

    int64_t size() const { return static_cast<int64_t>(tokens.size()); }
};

// The geometry of a paged key/value cache: n_pages pages of page_size positions, each holding
// every layer's keys and values of those positions.
struct PageGeometry {
    int64_t n_pages = 0;
    int64_t page_size = 16;
};

class StepModel {
public:
    virtual ~StepModel() = default;
    virtual int64_t vocab_size() const = 0;
    virtual int64_t max_positions() const = 0;       // a sequence's context (model max_seq_len)
    virtual int64_t max_tokens_per_step() const = 0;  // N at most
    virtual PageGeometry pages() const = 0;
    // Runs the step: copies batch.page_copies, writes every row's keys and values into its page
    // slot, and returns the logits of batch.logit_rows, [logit_rows.size(), vocab_size]
    // row-major on the host. The span stays valid until the next call. Throws Error on ids out
    // of range or a malformed batch.
    virtual std::span<const float> run(const StepBatch& batch) = 0;
};

}  // namespace tandem::infer

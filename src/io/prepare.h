// `tandem prepare` as a library call: documents from input files -> token ids on all cores ->
// train/val token shards + meta.json + a copy of the tokenizer, in one output directory that
// appears complete or not at all. Progress goes to a callback; cli/ draws it.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "io/bpe_tokenizer.h"
#include "io/document_reader.h"

namespace tandem::io {

struct PrepareProgress {
    int64_t bytes_done = 0, bytes_total = 0;
    int64_t n_documents = 0, n_tokens = 0;
};

struct PrepareOptions {
    std::vector<std::string> inputs;  // files or directories (see expand_inputs)
    DocumentFormat format;
    std::string out_dir;
    double val_fraction = 0.005;         // of documents, chosen by a hash of their index
    int64_t shard_tokens = 100'000'000;  // a shard is closed once it holds this many
    int64_t batch_bytes = 8 << 20;       // documents tokenized together, in parallel
    int n_threads = 0;                   // tokenizing threads; 0: one per core
    std::string tokenizer_source;        // recorded in meta.json
    std::function<void(const PrepareProgress&)> on_progress;
};

struct PrepareSummary {
    int64_t n_documents[2] = {0, 0};  // [train, val]
    int64_t n_tokens[2] = {0, 0};
    int64_t n_shards[2] = {0, 0};
    int64_t n_bytes = 0;
};

// Throws tandem::Error for a missing input, a bad jsonl line, inputs with no documents, or an
// output directory that holds something other than an earlier `tandem prepare` output.
PrepareSummary prepare_shards(const BpeTokenizer& tokenizer, const PrepareOptions& options);

// Whether document `index` goes to the validation split: a pure function of the index, so the
// split does not depend on threads, batches or the order of anything else.
bool is_validation_document(uint64_t index, double val_fraction);

}  // namespace tandem::io

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
    // Of documents, chosen by a hash of their index; when that draws none (too few documents),
    // of tokens, from the end of the stream (see tail_validation_tokens).
    double val_fraction = 0.005;
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
    // > 0: no document drew validation, so these last tokens of the stream were held out.
    int64_t n_tail_tokens = 0;
};

// At least this many tokens (or a tenth of the stream, if less) are held out by a token split:
// the default fraction is sized for corpora of many documents, and a tinyshakespeare-sized file
// at 0.5% would leave fewer validation windows than one evaluation reads.
inline constexpr int64_t kTailValidationTokens = 32768;

// The tokens a token split holds out of a stream of n_tokens: the fraction, but at least
// min(a tenth, kTailValidationTokens), and never all (0 for a fraction of 0).
int64_t tail_validation_tokens(int64_t n_tokens, double val_fraction);

// Throws tandem::Error for a missing input, a bad jsonl line, inputs with no documents, or an
// output directory that holds something other than an earlier `tandem prepare` output.
PrepareSummary prepare_shards(const BpeTokenizer& tokenizer, const PrepareOptions& options);

// Whether document `index` goes to the validation split: a pure function of the index, so the
// split does not depend on threads, batches or the order of anything else.
bool is_validation_document(uint64_t index, double val_fraction);

}  // namespace tandem::io

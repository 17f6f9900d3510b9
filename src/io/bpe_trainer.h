// Trains a byte-level BPE vocabulary: streams text files through the GPT-2 split pattern,
// counts distinct pieces, then merges the most frequent adjacent pair until the vocabulary is
// full, updating pair counts incrementally (only the pieces that hold the merged pair change).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "io/bpe_tokenizer.h"
#include "io/document_reader.h"

namespace tandem::io {

struct BpeTrainerOptions {
    int64_t vocab_size = 0;             // in all: 256 byte tokens + merges + specials
    std::vector<std::string> specials;  // become added tokens with the last ids
    DocumentFormat format;              // how the inputs hold text (plain text: whole files)
    int64_t min_pair_count = 2;         // stop early when no pair occurs this often
    int n_threads = 0;                  // for counting; 0: one per core
    // Called now and then while reading: (bytes read, bytes in all).
    std::function<void(int64_t, int64_t)> on_read;
};

// Ids: 0..255 the single bytes (in byte order), then one per merge in merge order, then the
// specials. `inputs` are files, directories or "-" (see expand_inputs). Throws tandem::Error
// naming an input that cannot be read or an impossible size.
BpeModel train_bpe(const std::vector<std::string>& inputs, const BpeTrainerOptions& options);

}  // namespace tandem::io

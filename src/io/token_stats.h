// Statistics of prepared token shards. The unigram entropy is the loss of the best model that
// ignores context (it predicts every token with its frequency): a trained model that does not go
// below it has learned nothing from context.
#pragma once

#include <string>

namespace tandem::io {

// Entropy in nats per token of the token frequencies of one split ("train" or "val") of a
// `tandem prepare` directory. Throws Error naming meta.json or a shard that cannot be read.
double unigram_entropy(const std::string& data_dir, const std::string& split = "train");

}  // namespace tandem::io

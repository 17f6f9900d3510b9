// Hugging Face model directories written by hand for the loader's tests: config.json, tensors in
// any dtype over one or more shards (with an index), and a byte-level tokenizer.json.
#pragma once

#include <string>
#include <vector>

#include "io/bpe_tokenizer.h"
#include "io/safetensors.h"
#include "model/weights.h"

namespace tandem::testing {

// 256 single bytes and <|endoftext|> (id 256).
io::BpeModel byte_tokenizer();

struct HfDir {
    model::Weights weights;                     // the values written (f32, init(7))
    std::vector<io::SafetensorsTensor> tensors;  // as written, pointing into data
    std::vector<std::vector<char>> data;
};

// Writes `dir`: the tensors in `dtype` over `n_shards` files, names prefixed with `prefix`.
HfDir write_hf_dir(const std::string& dir, const model::ModelConfig& config, DType dtype,
                   int n_shards = 1, const std::string& prefix = "");

}  // namespace tandem::testing

// Opening a trained model for inference: a checkpoint (or a run directory's newest valid
// checkpoint) becomes a Model on a backend, its config and its tokenizer. Serving and `generate`
// start here; nothing of the training state (optimizer, data cursor) is read.
#pragma once

#include <memory>
#include <string>

#include "backend/backend.h"
#include "io/bpe_tokenizer.h"
#include "model/model.h"

namespace tandem::infer {

struct InferenceModel {
    std::string checkpoint;  // the verified checkpoint directory
    std::unique_ptr<model::Model> model;
    std::unique_ptr<io::BpeTokenizer> tokenizer;
};

// Throws Error naming the file for a missing or corrupted checkpoint, a config.json tandem
// cannot map, a weight of the wrong shape, or a tokenizer that does not fit the model.
InferenceModel load_inference_model(const std::string& path, backend::Backend& backend);

}  // namespace tandem::infer

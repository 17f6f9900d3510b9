// The model `tandem serve` answers with: weights and tokenizer loaded as `generate` loads them,
// the paged forward pass and the engine sized for the server's context and sequence limits, the
// chat template recognised from the model's files (or --chat-template), and the stop tokens of
// each endpoint. HTTP, threads and request parsing are the server's.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/dtype.h"
#include "infer/engine.h"
#include "infer/model_source.h"
#include "infer/step_model.h"
#include "io/bpe_tokenizer.h"
#include "io/chat_template.h"

namespace tandem::serve {

struct ServedModelOptions {
    std::string path;                 // --model: what infer::ModelSource::open takes
    std::string device = "cpu";       // a backend name
    std::optional<DType> quant;       // --quant
    std::string name;                 // --served-model-name; "": the last part of path
    int64_t n_ctx = 0;                // --ctx; 0: the model's, at most kDefaultMaxCtx
    int64_t max_seqs = 64;            // --max-seqs: sequences decoded at once
    int64_t prefill_chunk = 256;      // prompt tokens of one sequence per step
    bool prefix_cache = true;         // --prefix-cache: share the pages of common prompt prefixes
    int64_t max_tokens_per_step = 0;  // 0: prefill_chunk + max_seqs (one chunk beside decodes)
    int64_t kv_pages = 0;             // 0: from kv_memory_mb, else max_seqs full contexts
    double kv_memory_mb = 0;          // 0: max_seqs full contexts, at most kDefaultKvMemoryMb
    int64_t kv_page_size = 16;
    DType kv_dtype = DType::F32;
    std::string chat_template_path;  // a Jinja file that overrides the model's chat template
};

// --ctx's default cap: a model that claims 40,960 positions (Qwen3) is served with 4,096 unless
// asked for more, so that the default KV pool stays a few GB.
inline constexpr int64_t kDefaultMaxCtx = 4096;
// The default KV pool holds max_seqs full contexts, but no more than this (and at least one).
inline constexpr double kDefaultKvMemoryMb = 4096;

class ServedModel {
   public:
    // Throws Error naming the path, the option or the template at fault: a model that does not
    // load, --ctx above the model's positions, a chat template tandem does not know or whose
    // tokens the tokenizer lacks.
    static std::unique_ptr<ServedModel> load(const ServedModelOptions& options);
    ~ServedModel();

    const std::string& name() const { return name_; }
    int64_t n_ctx() const { return n_ctx_; }
    int64_t n_kv_pages() const { return n_kv_pages_; }
    infer::Engine& engine() { return *engine_; }
    const io::BpeTokenizer& tokenizer() const { return *loaded_.tokenizer; }
    const model::ModelConfig& config() const { return loaded_.source->config(); }

    // The prompt of /v1/completions as `tandem generate` encodes it (HF's tokenizer(text)).
    std::vector<int32_t> encode_completion_prompt(std::string_view text) const;
    // Tokens that end a completion: generation_config.json's, the EOS and the end-of-text token.
    const std::vector<int32_t>& completion_stop_ids() const { return completion_stop_ids_; }

    // nullptr when neither the model's files nor --chat-template give one: /v1/chat/completions
    // then answers 400 saying so.
    const io::ChatTemplate* chat_template() const {
        return chat_template_ ? &*chat_template_ : nullptr;
    }
    // The template's end-of-turn tokens and the tokenizer's EOS.
    const std::vector<int32_t>& chat_stop_ids() const { return chat_stop_ids_; }
    // The chat prompt's tokens: the template rendered and encoded with its special tokens.
    std::vector<int32_t> encode_chat(std::span<const io::ChatMessage> messages,
                                     bool enable_thinking) const;
    // What the start-up line says about the model.
    std::string describe() const;

   private:
    ServedModel() = default;

    infer::LoadedModel loaded_;
    std::unique_ptr<infer::StepModel> step_model_;
    std::unique_ptr<infer::Engine> engine_;
    std::string name_;
    int64_t n_ctx_ = 0, n_kv_pages_ = 0;
    std::vector<int32_t> completion_stop_ids_, chat_stop_ids_;
    std::optional<io::ChatTemplate> chat_template_;
};

}  // namespace tandem::serve

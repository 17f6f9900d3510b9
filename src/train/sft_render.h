// A fine-tuning example as token ids and the mask of the ids that are learned: the model's chat
// template renders the conversation (io/chat_template.h), and only the assistant's content and
// the token that ends its turn count. A model without a template gets {"prompt","completion"}
// lines concatenated raw: [BOS] prompt completion [EOS], where EOS is the tokenizer's, else its
// <|endoftext|> (tandem's own tokenizers have no EOS but separate documents with it).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "io/bpe_tokenizer.h"
#include "io/chat_data.h"
#include "io/chat_template.h"

namespace tandem::train {

struct SftSequence {
    std::vector<int32_t> tokens;
    // Per token: 1 where predicting this token (from the ones before it) is learned. The first
    // token is never learned.
    std::vector<uint8_t> is_learned;
    int64_t line = 0;  // of the data file, for messages
    int64_t n_learned() const;
};

class SftRenderer {
   public:
    // Throws Error when the tokenizer's chat template is not one tandem renders, or lacks its
    // end-of-turn token.
    explicit SftRenderer(io::BpeModel model);

    // Throws Error (naming `where`, the example's file:line) for an example it cannot render: a
    // {"messages"} line for a model without a chat template, a conversation the template does
    // not render turn by turn, or nothing left to learn.
    SftSequence render(const io::ChatExample& example, const std::string& where) const;

    bool has_template() const { return template_.has_value(); }
    // "chat template chatml", "raw: [BOS] prompt completion <|endoftext|>": for the log.
    std::string describe() const;
    const io::BpeTokenizer& tokenizer() const { return tokenizer_; }
    int32_t pad_id() const;  // fills the end of packed rows (never learned)

   private:
    void render_template(const io::ChatExample& example, const std::string& where,
                         SftSequence& out) const;
    void render_raw(const io::ChatExample& example, const std::string& where,
                    SftSequence& out) const;
    // Appends the ids of `text` with is_learned = `learned`.
    void append(SftSequence& out, std::string_view text, bool learned) const;

    io::BpeModel model_;
    io::BpeTokenizer tokenizer_;
    std::optional<io::ChatTemplate> template_;
    std::vector<std::string> end_of_turn_;  // the template's stop token texts
    int32_t end_id_ = -1;                   // raw: the id after a completion, -1: none
};

}  // namespace tandem::train

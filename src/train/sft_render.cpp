// Rendering an example turn by turn. With a template, the text of the first i messages plus the
// assistant's header is a prefix of the text of the first i + 1, which is a prefix of the whole
// conversation's; the assistant's turn is the difference, learned up to and including its
// end-of-turn token (ChatML's "\n" after <|im_end|> is not learned: the model stops before it).
// Each piece is tokenized on its own, so that the learned ids are the ones the model emits when
// it generates after the header, whatever the tokenizer would merge across the boundary.
#include "train/sft_render.h"

#include <algorithm>

#include "core/error.h"

namespace tandem::train {

int64_t SftSequence::n_learned() const {
    int64_t n = 0;
    for (uint8_t b : is_learned) n += b;
    return n;
}

SftRenderer::SftRenderer(io::BpeModel model) : model_(std::move(model)), tokenizer_(model_) {
    end_id_ = model_.eos_id;
    for (const io::AddedToken& t : model_.added)
        if (end_id_ < 0 && t.content == "<|endoftext|>") end_id_ = t.id;
    if (model_.chat_template.empty()) return;
    template_ = io::ChatTemplate::recognise(model_.chat_template);
    end_of_turn_ = template_->stop_tokens();
    template_->stop_ids(tokenizer_);  // throws when the tokenizer lacks one of them
}

std::string SftRenderer::describe() const {
    if (template_) return "chat template " + template_->name();
    std::string text = "raw: ";
    if (model_.add_bos && model_.bos_id >= 0) text += "[BOS] ";
    text += "prompt completion";
    if (end_id_ >= 0) text += " " + tokenizer_.decode(std::vector<int32_t>{end_id_});
    return text + " (the model has no chat template)";
}

int32_t SftRenderer::pad_id() const {
    if (model_.pad_id >= 0) return model_.pad_id;
    return end_id_ >= 0 ? end_id_ : 0;
}

void SftRenderer::append(SftSequence& out, std::string_view text, bool learned) const {
    const size_t before = out.tokens.size();
    tokenizer_.encode(text, out.tokens);
    out.is_learned.resize(out.tokens.size(), learned ? 1 : 0);
    if (before == 0 && !out.is_learned.empty()) out.is_learned[0] = 0;  // nothing predicts it
}

SftSequence SftRenderer::render(const io::ChatExample& example, const std::string& where) const {
    SftSequence out;
    out.line = example.line;
    if (template_)
        render_template(example, where, out);
    else
        render_raw(example, where, out);
    if (out.n_learned() == 0)
        throw Error(where, ": renders to no assistant token to learn (an empty completion?)");
    return out;
}

void SftRenderer::render_raw(const io::ChatExample& example, const std::string& where,
                             SftSequence& out) const {
    if (!example.is_prompt_completion)
        throw Error(
            where,
            ": a \"messages\" line needs the model's chat template, and this model has none "
            "(tokenizer_config.json chat_template); write {\"prompt\", \"completion\"} lines "
            "instead");
    if (model_.add_bos && model_.bos_id >= 0) {
        out.tokens.push_back(model_.bos_id);
        out.is_learned.push_back(0);
    }
    append(out, example.turns[0].content, false);
    append(out, example.turns[1].content, true);
    if (end_id_ >= 0) {  // learned: it is how the model learns to stop
        out.tokens.push_back(end_id_);
        out.is_learned.push_back(out.tokens.size() > 1 ? 1 : 0);
    }
}

void SftRenderer::render_template(const io::ChatExample& example, const std::string& where,
                                  SftSequence& out) const {
    const std::vector<io::ChatMessage>& messages = example.turns;
    const std::span<const io::ChatMessage> all(messages);
    const std::string full = template_->render(all, false);
    size_t done = 0;  // bytes of `full` appended so far
    for (size_t i = 0; i < messages.size(); ++i) {
        if (messages[i].role != io::Role::Assistant) continue;
        const std::string head = template_->render(all.first(i), true);
        const std::string turn = template_->render(all.first(i + 1), false);
        if (!turn.starts_with(head) || !full.starts_with(turn) || head.size() < done)
            throw Error(where, ": the chat template (", template_->name(), ") renders message ", i,
                        " differently once later turns follow (Qwen3 drops the <think> of earlier "
                        "turns), so its "
                        "tokens cannot be marked; split the conversation so that each line ends "
                        "with that turn");
        append(out, std::string_view(full).substr(done, head.size() - done), false);
        // The learned part ends with the last end-of-turn token in the assistant's text.
        const std::string_view reply = std::string_view(turn).substr(head.size());
        size_t learned_end = 0;
        for (const std::string& stop : end_of_turn_) {
            const size_t at = reply.rfind(stop);
            if (at != std::string_view::npos) learned_end = std::max(learned_end, at + stop.size());
        }
        if (learned_end == 0) learned_end = reply.size();  // a template that ends turns otherwise
        append(out, reply.substr(0, learned_end), true);
        append(out, reply.substr(learned_end), false);
        done = turn.size();
    }
    append(out, std::string_view(full).substr(done), false);
}

}  // namespace tandem::train

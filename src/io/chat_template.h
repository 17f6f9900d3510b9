// Chat messages rendered into a prompt the way a model's own Jinja chat template renders them,
// for the template families tandem knows: ChatML (Qwen2, Qwen2.5, Qwen3 and other <|im_start|>
// templates) and Llama 3 (3.0, and 3.1/3.2 with their dated system header). The family is
// recognised from the tokenizer_config.json template by its markers; tandem runs no Jinja.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "io/bpe_tokenizer.h"
#include "io/chat_message.h"

namespace tandem::io {

enum class ChatFormat {
    ChatMl,  // <|im_start|>role\ncontent<|im_end|>\n
    Llama3,  // <|start_header_id|>role<|end_header_id|>\n\ncontent<|eot_id|>
};

class ChatTemplate {
   public:
    // Recognises `source` (tokenizer_config.json's chat_template). Throws Error naming the
    // markers it found (or that the template is empty) and the families tandem knows.
    static ChatTemplate recognise(std::string_view source);

    // The prompt text for `messages`, ending with the assistant's header when
    // add_generation_prompt. The text carries the template's special tokens (Llama 3's
    // <|begin_of_text|> included): encode it with BpeTokenizer::encode, not encode_with_special.
    // enable_thinking is Qwen3's switch (chat_template_kwargs.enable_thinking): false adds an
    // empty <think></think> after the generation prompt, so that the model answers directly;
    // templates without the switch ignore it.
    std::string render(std::span<const ChatMessage> messages, bool add_generation_prompt = true,
                       bool enable_thinking = true) const;

    // The texts of the tokens that end an assistant turn (<|im_end|>; <|eot_id|>).
    std::vector<std::string> stop_tokens() const;
    // Their ids in `tokenizer`, with its eos_id when it has one and it is not among them. Throws
    // Error when the tokenizer lacks one of the template's tokens (a template of another model).
    std::vector<int32_t> stop_ids(const BpeTokenizer& tokenizer) const;

    ChatFormat format() const { return format_; }
    // "chatml", "chatml (qwen3 reasoning)", "llama3", "llama3.1": what the server logs at start.
    std::string name() const;

    // Variants of the families, as recognised (public so that tests can state them).
    std::string default_system;        // ChatML: sent when the first message is not a system one
    bool strips_reasoning = false;     // ChatML, Qwen3: <think> of earlier assistant turns dropped
    bool has_thinking_switch = false;  // ChatML, Qwen3: honours enable_thinking
    bool has_dated_system = false;     // Llama 3.1+: a system turn with the knowledge cut-off first
    std::string knowledge_cutoff;      // Llama 3.1+: "December 2023"
    std::string date;                  // Llama 3.1+: the "Today Date" the template defaults to

   private:
    explicit ChatTemplate(ChatFormat format) : format_(format) {}
    void render_chatml(std::string& out, std::span<const ChatMessage> messages) const;
    void render_llama3(std::string& out, std::span<const ChatMessage> messages) const;

    ChatFormat format_;
};

}  // namespace tandem::io

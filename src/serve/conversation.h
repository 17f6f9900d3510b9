// A chat conversation as `tandem chat` keeps it: the messages so far, rendered with the model's
// chat template into the prompt ids of the next reply, the oldest exchanges dropped when the
// conversation outgrows the context; and what a line typed at the chat prompt asks for. Running
// the model is the caller's (the engine); the terminal is cli/'s.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "io/bpe_tokenizer.h"
#include "io/chat_template.h"

namespace tandem::serve {

// A line typed at the chat prompt: a message, or one of the slash commands.
enum class ChatInputKind { Message, Empty, Reset, Exit, Help, Unknown };
struct ChatInput {
    ChatInputKind kind = ChatInputKind::Message;
    std::string text;  // the message (Message), the command as typed (Unknown)
};
// "/reset", "/exit" (or "/quit"), "/help" (surrounding blanks ignored); any other line that
// starts with '/' and a letter is an Unknown command; a blank line is Empty; anything else is the
// message, as typed (a trailing '\r' of a CRLF line dropped).
ChatInput parse_chat_input(std::string_view line);
// One line listing the commands, for /help and after an unknown command.
const char* chat_commands_help();

class Conversation {
   public:
    // `chat_template` and `tokenizer` must outlive the conversation. `system` (may be empty: then
    // none is sent, and the template's own default applies) stays first through resets and drops.
    // n_context is the positions a prompt and its reply share. enable_thinking is Qwen3's switch
    // (io::ChatTemplate::render): false asks for answers without reasoning.
    Conversation(const io::ChatTemplate& chat_template, const io::BpeTokenizer& tokenizer,
                 int64_t n_context, std::string system = "", bool enable_thinking = true);

    // Adds the user's message and returns the prompt ids of the reply: the rendered conversation
    // with the assistant's header, leaving at least `reply_tokens` positions free (clamped to
    // half the context). The oldest user/assistant exchanges are dropped until it fits. Throws
    // Error with the token counts when the message alone does not fit; the conversation is then
    // as it was.
    std::vector<int32_t> begin_turn(std::string user, int64_t reply_tokens);
    // Records the reply to the message of the last begin_turn.
    void end_turn(std::string reply);
    // Forgets the message of the last begin_turn (a reply that was never produced).
    void cancel_turn();
    // Back to the system message alone.
    void reset();

    const std::vector<io::ChatMessage>& messages() const { return messages_; }
    // Exchanges dropped to fit the context since the start or the last reset.
    int64_t n_dropped() const { return n_dropped_; }
    bool in_turn() const { return in_turn_; }

   private:
    std::vector<int32_t> render_ids() const;
    size_t first_exchange() const { return has_system_ ? 1 : 0; }

    const io::ChatTemplate& template_;
    const io::BpeTokenizer& tokenizer_;
    int64_t n_context_;
    bool enable_thinking_;
    bool has_system_ = false;
    std::vector<io::ChatMessage> messages_;
    int64_t n_dropped_ = 0;
    bool in_turn_ = false;
};

}  // namespace tandem::serve

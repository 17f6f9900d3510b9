// The conversation of `tandem chat`: messages kept in order (an optional system message first),
// the prompt re-rendered from all of them for every reply, since the chat templates tandem knows
// change earlier turns as the conversation grows (Qwen3 drops the reasoning of past replies).
#include "serve/conversation.h"

#include <algorithm>

#include "core/error.h"

namespace tandem::serve {

namespace {

std::string_view trim_blanks(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return s;
}

bool is_letter(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

}  // namespace

ChatInput parse_chat_input(std::string_view line) {
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    const std::string_view word = trim_blanks(line);
    if (word.empty()) return {ChatInputKind::Empty, ""};
    // "/ 2 = 0.5" or "/usr/bin is ..." are messages; only "/word" is a command.
    if (word.size() >= 2 && word[0] == '/' && is_letter(word[1]) &&
        word.find_first_of(" \t/", 1) == std::string_view::npos) {
        if (word == "/reset") return {ChatInputKind::Reset, ""};
        if (word == "/exit" || word == "/quit") return {ChatInputKind::Exit, ""};
        if (word == "/help") return {ChatInputKind::Help, ""};
        return {ChatInputKind::Unknown, std::string(word)};
    }
    return {ChatInputKind::Message, std::string(line)};
}

const char* chat_commands_help() {
    return "commands: /reset starts a new conversation, /exit (or Ctrl-D) ends the chat, /help "
           "shows this; Ctrl-C stops a reply";
}

Conversation::Conversation(const io::ChatTemplate& chat_template, const io::BpeTokenizer& tokenizer,
                           int64_t n_context, std::string system, bool enable_thinking)
    : template_(chat_template),
      tokenizer_(tokenizer),
      n_context_(n_context),
      enable_thinking_(enable_thinking) {
    TANDEM_ASSERT(n_context >= 2, n_context);
    if (!system.empty()) {
        messages_.push_back({io::Role::System, std::move(system)});
        has_system_ = true;
    }
}

std::vector<int32_t> Conversation::render_ids() const {
    // The rendered text carries the template's special tokens: encode() matches them, as
    // apply_chat_template(tokenize=True) does (no BOS added: Llama 3's template writes its own).
    return tokenizer_.encode(template_.render(messages_, true, enable_thinking_));
}

std::vector<int32_t> Conversation::begin_turn(std::string user, int64_t reply_tokens) {
    TANDEM_ASSERT(!in_turn_);
    const int64_t reserve = std::clamp<int64_t>(reply_tokens, 1, n_context_ / 2);
    const int64_t limit = n_context_ - reserve;  // prompt tokens at most
    std::vector<io::ChatMessage> kept = messages_;
    int64_t n_dropped = 0;
    messages_.push_back({io::Role::User, std::move(user)});
    for (;;) {
        std::vector<int32_t> ids = render_ids();
        if (int64_t(ids.size()) <= limit) {
            n_dropped_ += n_dropped;
            in_turn_ = true;
            return ids;
        }
        // Drop the oldest exchange: its user message and every reply up to the next user message.
        const size_t first = first_exchange();
        if (messages_.size() - first <= 1) {
            const int64_t n_ids = int64_t(ids.size());
            messages_ = std::move(kept);
            throw Error("the message is ", n_ids, " tokens with the chat template",
                        has_system_ ? " and the system message" : "", ", but the context holds ",
                        n_context_, " and ", reserve, " are kept for the reply (shorten it, or "
                        "raise --ctx or lower --max-tokens)");
        }
        size_t end = first + 1;
        while (end + 1 < messages_.size() && messages_[end].role != io::Role::User) ++end;
        messages_.erase(messages_.begin() + std::ptrdiff_t(first),
                        messages_.begin() + std::ptrdiff_t(end));
        ++n_dropped;
    }
}

void Conversation::end_turn(std::string reply) {
    TANDEM_ASSERT(in_turn_);
    messages_.push_back({io::Role::Assistant, std::move(reply)});
    in_turn_ = false;
}

void Conversation::cancel_turn() {
    TANDEM_ASSERT(in_turn_ && messages_.back().role == io::Role::User);
    messages_.pop_back();
    in_turn_ = false;
}

void Conversation::reset() {
    messages_.resize(first_exchange());
    n_dropped_ = 0;
    in_turn_ = false;
}

}  // namespace tandem::serve

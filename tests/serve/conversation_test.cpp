// The conversation of `tandem chat`: the prompt of each turn is the chat template over every
// message so far (compared with the template's own rendering, token for token), replies join the
// history, old exchanges are dropped to fit the context (the system message kept), a message too
// long alone is refused without changing anything; and what each typed line means.
#include "serve/conversation.h"

#include <gtest/gtest.h>

#include "common/error_message.h"
#include "common/hf_dir_util.h"

namespace tandem::serve {
namespace {

// Single bytes, <|endoftext|> and ChatML's two markers: every character is one token, so the
// lengths below can be counted by hand.
io::BpeTokenizer chatml_tokenizer() {
    io::BpeModel m = testing::byte_tokenizer();
    m.added.push_back({"<|im_start|>", 257, true});
    m.added.push_back({"<|im_end|>", 258, true});
    m.tokens.resize(259);
    return io::BpeTokenizer(std::move(m));
}

// Qwen3's markers: no default system message.
const io::ChatTemplate kChatMl =
    io::ChatTemplate::recognise("<|im_start|>{{ m }}<|im_end|> </think> reasoning_content enable_thinking");

std::vector<io::ChatMessage> user_said(std::initializer_list<const char*> turns) {
    std::vector<io::ChatMessage> messages;
    bool user = true;
    for (const char* t : turns) {
        messages.push_back({user ? io::Role::User : io::Role::Assistant, t});
        user = !user;
    }
    return messages;
}

TEST(Conversation, PromptIsTheTemplateOverEveryMessageSoFar) {
    const io::BpeTokenizer tok = chatml_tokenizer();
    Conversation c(kChatMl, tok, 4096);
    const std::vector<int32_t> first = c.begin_turn("Hi", 16);
    EXPECT_EQ(first, tok.encode(kChatMl.render(user_said({"Hi"}))));
    EXPECT_EQ(first.front(), 257);  // <|im_start|> as one token, not its bytes
    EXPECT_TRUE(c.in_turn());
    c.end_turn("Hello!");
    const std::vector<int32_t> second = c.begin_turn("2+2?", 16);
    EXPECT_EQ(second, tok.encode(kChatMl.render(user_said({"Hi", "Hello!", "2+2?"}))));
    c.end_turn("4");
    ASSERT_EQ(c.messages().size(), 4u);
    EXPECT_EQ(c.messages()[3].content, "4");
    EXPECT_EQ(c.n_dropped(), 0);
}

TEST(Conversation, SystemMessageOpensEveryPromptAndSurvivesReset) {
    const io::BpeTokenizer tok = chatml_tokenizer();
    Conversation c(kChatMl, tok, 4096, "Be terse.");
    c.begin_turn("Hi", 16);
    c.end_turn("Hello!");
    c.reset();
    ASSERT_EQ(c.messages().size(), 1u);
    EXPECT_EQ(c.messages()[0].role, io::Role::System);
    const std::vector<io::ChatMessage> expected = {{io::Role::System, "Be terse."}, {io::Role::User, "Yo"}};
    EXPECT_EQ(c.begin_turn("Yo", 16), tok.encode(kChatMl.render(expected)));
}

TEST(Conversation, NoThinkingAddsQwen3sEmptyThinkBlock) {
    const io::BpeTokenizer tok = chatml_tokenizer();
    Conversation c(kChatMl, tok, 4096, "", false);
    const std::vector<int32_t> ids = c.begin_turn("Hi", 16);
    EXPECT_EQ(ids, tok.encode(kChatMl.render(user_said({"Hi"}), true, false)));
    EXPECT_NE(ids, tok.encode(kChatMl.render(user_said({"Hi"}))));
}

TEST(Conversation, CancelledTurnLeavesNoTrace) {
    const io::BpeTokenizer tok = chatml_tokenizer();
    Conversation c(kChatMl, tok, 4096);
    c.begin_turn("Hi", 16);
    c.end_turn("Hello!");
    c.begin_turn("never answered", 16);
    c.cancel_turn();
    EXPECT_FALSE(c.in_turn());
    EXPECT_EQ(c.begin_turn("Again", 16),
              tok.encode(kChatMl.render(user_said({"Hi", "Hello!", "Again"}))));
}

TEST(Conversation, DropsOldestExchangesToFitTheContextKeepingTheSystemMessage) {
    const io::BpeTokenizer tok = chatml_tokenizer();
    // "<|im_start|>user\nAAAA<|im_end|>\n" is 1 + 5 + 4 + 1 + 1 = 12 tokens; an assistant turn of
    // 4 characters is 17; the generation prompt "<|im_start|>assistant\n" 11; the system turn
    // "<|im_start|>system\nS<|im_end|>\n" 11.
    const int64_t n_context = 11 + 12 + 17 + 12 + 11 + 8;  // one exchange, a new message, 8 free
    Conversation c(kChatMl, tok, n_context, "S");
    EXPECT_EQ(int64_t(c.begin_turn("AAAA", 8).size()), 11 + 12 + 11);
    c.end_turn("aaaa");
    EXPECT_EQ(int64_t(c.begin_turn("BBBB", 8).size()), 11 + 12 + 17 + 12 + 11);
    c.end_turn("bbbb");
    EXPECT_EQ(c.n_dropped(), 0);
    // A third message no longer fits beside both exchanges: the first (AAAA, aaaa) goes.
    const std::vector<int32_t> third = c.begin_turn("CCCC", 8);
    EXPECT_EQ(c.n_dropped(), 1);
    const std::vector<io::ChatMessage> expected = {{io::Role::System, "S"},
                                               {io::Role::User, "BBBB"},
                                               {io::Role::Assistant, "bbbb"},
                                               {io::Role::User, "CCCC"}};
    EXPECT_EQ(c.messages().size(), expected.size());
    EXPECT_EQ(third, tok.encode(kChatMl.render(expected)));
    // Asking more room for the reply than the context can give is clamped to half of it.
    c.end_turn("cccc");
    c.begin_turn("D", 1000);
    EXPECT_EQ(c.messages().back().content, "D");
    EXPECT_EQ(c.messages().size(), 2u);  // S, D: both earlier exchanges dropped
    EXPECT_EQ(c.n_dropped(), 3);
}

TEST(Conversation, RefusesAMessageTooLongAloneAndKeepsTheConversation) {
    const io::BpeTokenizer tok = chatml_tokenizer();
    Conversation c(kChatMl, tok, 64);
    c.begin_turn("Hi", 8);
    c.end_turn("Hello!");
    const std::string long_message(60, 'x');
    const std::string m = testing::error_message([&] { c.begin_turn(long_message, 8); });
    for (const char* part : {"the message is 79 tokens", "the context holds 64",
                             "8 are kept for the reply", "--ctx"})
        EXPECT_NE(m.find(part), std::string::npos) << m;
    EXPECT_FALSE(c.in_turn());
    EXPECT_EQ(c.messages().size(), 2u);  // the earlier exchange was not dropped for nothing
    EXPECT_EQ(c.n_dropped(), 0);
}

TEST(ChatInput, CommandsMessagesAndBlankLines) {
    EXPECT_EQ(parse_chat_input("/reset").kind, ChatInputKind::Reset);
    EXPECT_EQ(parse_chat_input("  /exit \r").kind, ChatInputKind::Exit);
    EXPECT_EQ(parse_chat_input("/quit").kind, ChatInputKind::Exit);
    EXPECT_EQ(parse_chat_input("/help").kind, ChatInputKind::Help);
    EXPECT_EQ(parse_chat_input("").kind, ChatInputKind::Empty);
    EXPECT_EQ(parse_chat_input(" \t\r").kind, ChatInputKind::Empty);
    const ChatInput unknown = parse_chat_input("/rest");
    EXPECT_EQ(unknown.kind, ChatInputKind::Unknown);
    EXPECT_EQ(unknown.text, "/rest");
    // A slash that does not start a single word is text to send.
    for (const char* text : {"/usr/bin is where?", "/ 2", "1/2", "/etc/passwd", "//x"}) {
        const ChatInput in = parse_chat_input(text);
        EXPECT_EQ(in.kind, ChatInputKind::Message) << text;
        EXPECT_EQ(in.text, text);
    }
    EXPECT_EQ(parse_chat_input("  hi there \r").text, "  hi there ");
}

}  // namespace
}  // namespace tandem::serve

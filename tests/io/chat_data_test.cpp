// Fine-tuning JSON Lines: both line forms read into turns, and every kind of bad line reported
// with its file:line and the field at fault, none dropped.
#include "io/chat_data.h"

#include <gtest/gtest.h>

#include "common/temp_dir.h"

namespace tandem::io {
namespace {

TEST(ChatData, ReadsMessagesAndPromptCompletionLines) {
    testing::TempDir dir;
    const std::string path =
        dir.write("chat.jsonl", R"({"messages": [{"role": "system", "content": "be brief"}, )"
                                R"({"role": "user", "content": "hi"}, )"
                                R"({"role": "assistant", "content": "yo"}], "id": 7})"
                                "\n"
                                R"({"prompt": "2+2=", "completion": "4"})"
                                "\n");
    const ChatFile f = read_chat_jsonl(path);
    EXPECT_EQ(f.n_lines, 2);
    EXPECT_TRUE(f.bad_lines.empty());
    ASSERT_EQ(f.examples.size(), 2u);
    EXPECT_EQ(f.examples[0].line, 1);
    ASSERT_EQ(f.examples[0].turns.size(), 3u);
    EXPECT_EQ(f.examples[0].turns[0].role, Role::System);
    EXPECT_EQ(f.examples[0].turns[2].role, Role::Assistant);
    EXPECT_EQ(f.examples[0].turns[2].content, "yo");
    EXPECT_FALSE(f.examples[0].is_prompt_completion);
    EXPECT_EQ(f.examples[1].line, 2);
    EXPECT_TRUE(f.examples[1].is_prompt_completion);
    EXPECT_EQ(f.examples[1].turns[0].role, Role::User);
    EXPECT_EQ(f.examples[1].turns[0].content, "2+2=");
    EXPECT_EQ(f.examples[1].turns[1].content, "4");
}

TEST(ChatData, EveryBadLineIsReportedWithItsNumberAndWhy) {
    testing::TempDir dir;
    const std::string path = dir.write(
        "bad.jsonl",
        "{\"prompt\": \"a\", \"completion\": \"b\"}\n"                  // 1 good
        "{\"prompt\": \"a\", \"completion\": \n"                        // 2 truncated
        "\n"                                                            // 3 empty
        "{\"prompt\": \"a\"}\n"                                         // 4 missing field
        "{\"messages\": [{\"role\": \"tool\", \"content\": \"x\"}]}\n"  // 5 unknown role
        "{\"messages\": []}\n"                                          // 6 no messages
        "{\"messages\": [{\"role\": \"user\", \"content\": \"x\"}]}\n"  // 7 nothing to learn
        "{\"messages\": [{\"role\": \"user\", \"content\": 5}]}\n"      // 8 wrong type
        "[1, 2]\n"                                                      // 9 not an object
        "{\"text\": \"x\"}\n"                                           // 10 neither form
        "{\"messages\": [{\"role\": \"assistant\", \"content\": \"x\"}]}\r\n");  // 11 good
    const ChatFile f = read_chat_jsonl(path);
    EXPECT_EQ(f.n_lines, 11);
    ASSERT_EQ(f.examples.size(), 2u);
    EXPECT_EQ(f.examples[1].line, 11);
    const std::vector<std::pair<int64_t, std::string>> want = {
        {2, "not valid JSON"},
        {3, "empty line"},
        {4, "has \"prompt\" but no \"completion\""},
        {5, "messages[0].role is \"tool\", not one of system, user, assistant"},
        {6, "\"messages\" is empty"},
        {7, "no assistant message"},
        {8, "messages[0].content is a number"},
        {9, "the line is an array"},
        {10, "has neither \"messages\" nor \"prompt\""},
    };
    ASSERT_EQ(f.bad_lines.size(), want.size());
    for (size_t i = 0; i < want.size(); ++i) {
        const BadLine& b = f.bad_lines[i];
        EXPECT_EQ(b.line, want[i].first);
        const std::string where = path + ":" + std::to_string(want[i].first) + ": ";
        EXPECT_EQ(b.reason.rfind(where, 0), 0u) << b.reason;
        EXPECT_NE(b.reason.find(want[i].second), std::string::npos) << b.reason;
    }
}

}  // namespace
}  // namespace tandem::io

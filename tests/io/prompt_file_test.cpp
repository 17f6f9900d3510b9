// Prompt files: plain lines or JSON Lines, told apart by the first line, with errors that name
// the file and the line.
#include "io/prompt_file.h"

#include <gtest/gtest.h>

#include "common/error_message.h"
#include "common/temp_dir.h"

namespace tandem::io {
namespace {

using testing::error_message;

TEST(PromptFile, ReadsOnePromptPerLineSkippingBlankLines) {
    testing::TempDir dir;
    const std::string path = dir.write("p.txt", "The meaning of\r\n\n  {not json here}\nlast");
    EXPECT_EQ(read_prompt_file(path),
              (std::vector<std::string>{"The meaning of", "  {not json here}", "last"}));
}

TEST(PromptFile, ReadsJsonLinesWhenTheFirstLineIsAnObject) {
    testing::TempDir dir;
    const std::string path = dir.write(
        "p.jsonl", "\n {\"prompt\": \"a\\nb\", \"id\": 1}\n{\"prompt\": \"\\u00e9t\\u00e9\"}\n\n");
    EXPECT_EQ(read_prompt_file(path), (std::vector<std::string>{"a\nb", "\xc3\xa9t\xc3\xa9"}));
}

TEST(PromptFile, ErrorsNameTheFileAndTheLine) {
    testing::TempDir dir;
    const std::string bad = dir.write("bad.jsonl", "{\"prompt\": \"a\"}\n\n{\"prompt\": \"b\"\n");
    std::string m = error_message([&] { read_prompt_file(bad); });
    EXPECT_NE(m.find("bad.jsonl:3: not valid JSON"), std::string::npos) << m;
    const std::string field = dir.write("field.jsonl", "{\"prompt\": \"a\"}\n{\"text\": \"b\"}\n");
    m = error_message([&] { read_prompt_file(field); });
    EXPECT_NE(m.find("field.jsonl:2: expected an object with a \"prompt\" string"),
              std::string::npos) << m;
    const std::string number = dir.write("number.jsonl", "{\"prompt\": 5}\n");
    m = error_message([&] { read_prompt_file(number); });
    EXPECT_NE(m.find("number.jsonl:1:"), std::string::npos) << m;
    const std::string empty = dir.write("empty.txt", "\n  \n");
    m = error_message([&] { read_prompt_file(empty); });
    EXPECT_NE(m.find("empty.txt: holds no prompts"), std::string::npos) << m;
    m = error_message([&] { read_prompt_file(dir.file("missing.txt")); });
    EXPECT_NE(m.find("missing.txt"), std::string::npos) << m;
}

}  // namespace
}  // namespace tandem::io

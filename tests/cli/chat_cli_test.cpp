// `tandem chat` fed through stdin, as a user types: each greedy reply equals what `tandem
// generate` continues the chat template's prompt with, the second turn sees the first, /reset
// forgets, /exit and end of input end the chat with 0, tokens/s follow each reply, a seed repeats
// a sampled chat; a model without a chat template (or with an unknown one) is refused by name.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "cli_util.h"
#include "common/hf_dir_util.h"
#include "io/tokenizer_files.h"
#include "model/config.h"
#include "io/chat_template.h"

namespace tandem::testing {
namespace {

// Qwen3's markers, as tokenizer_config.json would carry them (recognised, not run).
const char* kTemplate = "{% for m in messages %}<|im_start|>{{ m.role }}{{ m.content }}<|im_end|>"
                        "{% endfor %} </think> reasoning_content enable_thinking";

// A tiny Qwen3-shaped model with random weights whose tokenizer is single bytes plus
// <|endoftext|>, <|im_start|> and <|im_end|>, and (when `chat_template`) that template.
std::string write_chat_model(const TempDir& tmp, const std::string& chat_template) {
    model::ModelConfig c = model::preset_config("qwen3-tiny");
    c.vocab_size = 259;
    c.max_seq_len = 256;
    const std::string dir = tmp.file("model");
    write_hf_dir(dir, c, DType::F32);
    io::BpeModel m = byte_tokenizer();
    m.added.push_back({"<|im_start|>", 257, true});
    m.added.push_back({"<|im_end|>", 258, true});
    m.tokens.resize(259);
    io::save_hf_tokenizer_json(m, dir + "/tokenizer.json");
    if (!chat_template.empty())
        tmp.write("model/tokenizer_config.json",
                  nlohmann::json{{"chat_template", chat_template}}.dump());
    return dir;
}

const char* kGreedy = " --temperature 0 --max-tokens 12";

// What `tandem generate` continues `prompt` with (greedy, the same limit, <|im_end|> a stop).
std::string generate_reply(const TempDir& tmp, const std::string& model, const std::string& prompt) {
    const CliRun r = tandem(tmp, "generate --model " + shell_quoted(model) + kGreedy +
                                     " --stop '<|im_end|>' --prompt " + shell_quoted(prompt));
    EXPECT_EQ(r.code, 0) << r.err;
    EXPECT_EQ(r.out.rfind(prompt, 0), 0u) << r.out;  // echoed, then the text and a newline
    return r.out.substr(prompt.size(), r.out.size() - prompt.size() - 1);
}

size_t count(const std::string& text, const std::string& part) {
    size_t n = 0;
    for (size_t at = text.find(part); at != std::string::npos; at = text.find(part, at + 1)) ++n;
    return n;
}

TEST(ChatCli, RepliesAreTheEnginesContinuationOfTheTemplateAndResetForgets) {
    TempDir tmp;
    const std::string model = write_chat_model(tmp, kTemplate);
    const std::string input = tmp.write("in.txt", "Hello there\n\nHow are you?\n/reset\nHello there\n"
                                                  "/exit\nnever read\n");
    const CliRun r = tandem(tmp, "chat --model " + shell_quoted(model) + kGreedy, input);
    ASSERT_EQ(r.code, 0) << r.err;

    const io::ChatTemplate chatml = io::ChatTemplate::recognise(kTemplate);
    using io::Role;
    const std::string first = generate_reply(
        tmp, model, chatml.render(std::vector<io::ChatMessage>{{Role::User, "Hello there"}}));
    const std::string second = generate_reply(
        tmp, model, chatml.render(std::vector<io::ChatMessage>{{Role::User, "Hello there"},
                                                                  {Role::Assistant, first},
                                                                  {Role::User, "How are you?"}}));
    // Three replies, the last after /reset as the first; "never read" came after /exit.
    EXPECT_EQ(r.out, first + "\n" + second + "\n" + first + "\n");
    EXPECT_EQ(count(r.err, "tokens/s"), 3u) << r.err;
    EXPECT_EQ(count(r.err, "[new conversation]"), 1u) << r.err;
    EXPECT_NE(r.err.find("chatml (qwen3 reasoning) template, 256-token context"), std::string::npos)
        << r.err;
}

TEST(ChatCli, EndOfInputEndsTheChatAndASeedRepeatsASampledOne) {
    TempDir tmp;
    const std::string model = write_chat_model(tmp, kTemplate);
    const std::string input = tmp.write("in.txt", "one\ntwo\n/nope\n");
    const std::string args =
        "chat --model " + shell_quoted(model) + " --temperature 1 --max-tokens 8 --seed ";
    const CliRun a = tandem(tmp, args + "5", input);
    const CliRun b = tandem(tmp, args + "5", input);
    ASSERT_EQ(a.code, 0) << a.err;
    ASSERT_EQ(b.code, 0) << b.err;
    EXPECT_EQ(a.out, b.out);
    EXPECT_EQ(count(a.err, "tokens/s"), 2u) << a.err;
    EXPECT_NE(a.err.find("unknown command /nope; commands: /reset"), std::string::npos) << a.err;
}

TEST(ChatCli, DropsOldExchangesAndRefusesAMessageLongerThanTheContext) {
    TempDir tmp;
    const std::string model = write_chat_model(tmp, kTemplate);
    // Each exchange is about 30 tokens of 64: the third message pushes out the first exchange.
    const std::string input = tmp.write(
        "in.txt", "aaaaaaaaaa\nbbbbbbbbbb\ncccccccccc\n" + std::string(100, 'x') + "\nshort\n");
    const CliRun r = tandem(tmp, "chat --model " + shell_quoted(model) + kGreedy + " --ctx 64",
                            input);
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_NE(r.err.find("exchange(s) no longer fit the context: dropped"), std::string::npos)
        << r.err;
    EXPECT_NE(r.err.find("[not sent: the message is 119 tokens"), std::string::npos) << r.err;
    EXPECT_EQ(count(r.err, "tokens/s"), 4u) << r.err;  // the long message got none; "short" did
}

TEST(ChatCli, RefusesAModelWithoutAKnownChatTemplate) {
    TempDir tmp;
    const std::string model = write_chat_model(tmp, "");
    const CliRun none = tandem(tmp, "chat --model " + shell_quoted(model));
    EXPECT_EQ(none.code, 1);
    EXPECT_NE(none.err.find(model + ": the model has no chat template"), std::string::npos)
        << none.err;
    tmp.write("model/tokenizer_config.json",
              R"({"chat_template": "{{ '[INST] ' + messages[0].content + ' [/INST]' }}"})");
    const CliRun unknown = tandem(tmp, "chat --model " + shell_quoted(model));
    EXPECT_EQ(unknown.code, 1);
    EXPECT_NE(unknown.err.find(model + ": "), std::string::npos) << unknown.err;
    EXPECT_NE(unknown.err.find("ChatML"), std::string::npos) << unknown.err;
    const CliRun ctx = tandem(tmp, "chat --model " + shell_quoted(model) + " --ctx 1");
    EXPECT_EQ(ctx.code, 2) << ctx.err;
    EXPECT_NE(ctx.err.find("--ctx"), std::string::npos) << ctx.err;
}

}  // namespace
}  // namespace tandem::testing

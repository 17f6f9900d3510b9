// Chat templates: each known template family recognised from the model's own Jinja source, and
// conversations rendered exactly as jinja2 renders those sources (the expected strings are the
// output of chat_templates/render_expected.py); unknown templates refused naming their markers;
// the stop tokens mapped to a tokenizer's ids.
#include "io/chat_template.h"

#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <sstream>

#include "common/test_util.h"

namespace tandem::io {
namespace {

std::string read_template(const std::string& name) {
    std::ifstream in(testing::test_data_path("io/chat_templates/" + name + ".jinja"));
    EXPECT_TRUE(in.good()) << name;
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
}

using Messages = std::vector<ChatMessage>;

std::map<std::string, Messages> conversations() {
    const Role S = Role::System, U = Role::User, A = Role::Assistant;
    return {
        {"multi", {{S, "You are terse."}, {U, "Hi"}, {A, "Hello!"}, {U, "2+2?"}}},
        {"nosystem", {{U, "  spaced \n"}}},
        {"systems", {{S, "S1"}, {U, "u"}, {S, " S2 "}, {U, "v"}}},
        {"think_past", {{U, "q1"}, {A, "<think>\nr1\n</think>\n\na1"}, {U, "q2"}}},
        {"think_current",
         {{U, "q1"},
          {A, "<think>\nr1\n</think>\n\na1"},
          {U, "q2"},
          {A, "<think>r2a<think>r2b</think>x</think>\n\na2"},
          {A, "plain"}}},
    };
}

struct Expected {
    const char* template_name;
    const char* conversation;
    const char* prompt;
};

// python3 tests/io/chat_templates/render_expected.py
const Expected kExpected[] = {
    {"qwen3", "multi",
     "<|im_start|>system\nYou are "
     "terse.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHello!<|im_end|>\n<|"
     "im_start|>user\n2+2?<|im_end|>\n<|im_start|>assistant\n"},
    {"qwen3", "nosystem", "<|im_start|>user\n  spaced \n<|im_end|>\n<|im_start|>assistant\n"},
    {"qwen3", "systems",
     "<|im_start|>system\nS1<|im_end|>\n<|im_start|>user\nu<|im_end|>\n<|im_start|>system\n S2 "
     "<|im_end|>\n<|im_start|>user\nv<|im_end|>\n<|im_start|>assistant\n"},
    {"qwen3", "think_past",
     "<|im_start|>user\nq1<|im_end|>\n<|im_start|>assistant\na1<|im_end|>\n<|im_start|>user\nq2<|"
     "im_end|>\n<|im_start|>assistant\n"},
    {"qwen3", "think_current",
     "<|im_start|>user\nq1<|im_end|>\n<|im_start|>assistant\na1<|im_end|>\n<|im_start|>user\nq2<|"
     "im_end|>\n<|im_start|>assistant\n<think>\nr2b\n</"
     "think>\n\na2<|im_end|>\n<|im_start|>assistant\n<think>\n\n</"
     "think>\n\nplain<|im_end|>\n<|im_start|>assistant\n"},
    {"qwen25_no_tools", "multi",
     "<|im_start|>system\nYou are "
     "terse.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHello!<|im_end|>\n<|"
     "im_start|>user\n2+2?<|im_end|>\n<|im_start|>assistant\n"},
    {"qwen25_no_tools", "nosystem",
     "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful "
     "assistant.<|im_end|>\n<|im_start|>user\n  spaced \n<|im_end|>\n<|im_start|>assistant\n"},
    {"qwen25_no_tools", "systems",
     "<|im_start|>system\nS1<|im_end|>\n<|im_start|>user\nu<|im_end|>\n<|im_start|>system\n S2 "
     "<|im_end|>\n<|im_start|>user\nv<|im_end|>\n<|im_start|>assistant\n"},
    {"qwen25_no_tools", "think_past",
     "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful "
     "assistant.<|im_end|>\n<|im_start|>user\nq1<|im_end|>\n<|im_start|>assistant\n<think>\nr1\n</"
     "think>\n\na1<|im_end|>\n<|im_start|>user\nq2<|im_end|>\n<|im_start|>assistant\n"},
    {"qwen25_no_tools", "think_current",
     "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful "
     "assistant.<|im_end|>\n<|im_start|>user\nq1<|im_end|>\n<|im_start|>assistant\n<think>\nr1\n</"
     "think>\n\na1<|im_end|>\n<|im_start|>user\nq2<|im_end|>\n<|im_start|>assistant\n<think>r2a<"
     "think>r2b</think>x</"
     "think>\n\na2<|im_end|>\n<|im_start|>assistant\nplain<|im_end|>\n<|im_start|>assistant\n"},
    {"llama3", "multi",
     "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nYou are "
     "terse.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|><|start_header_id|>"
     "assistant<|end_header_id|>\n\nHello!<|eot_id|><|start_header_id|>user<|end_header_id|>\n\n2+"
     "2?<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"},
    {"llama3", "nosystem",
     "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nspaced<|eot_id|><|start_header_"
     "id|>assistant<|end_header_id|>\n\n"},
    {"llama3", "systems",
     "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nS1<|eot_id|><|start_header_id|"
     ">user<|end_header_id|>\n\nu<|eot_id|><|start_header_id|>system<|end_header_id|>\n\nS2<|eot_"
     "id|><|start_header_id|>user<|end_header_id|>\n\nv<|eot_id|><|start_header_id|>assistant<|end_"
     "header_id|>\n\n"},
    {"llama3", "think_past",
     "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nq1<|eot_id|><|start_header_id|>"
     "assistant<|end_header_id|>\n\n<think>\nr1\n</"
     "think>\n\na1<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nq2<|eot_id|><|start_header_"
     "id|>assistant<|end_header_id|>\n\n"},
    {"llama3", "think_current",
     "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nq1<|eot_id|><|start_header_id|>"
     "assistant<|end_header_id|>\n\n<think>\nr1\n</"
     "think>\n\na1<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nq2<|eot_id|><|start_header_"
     "id|>assistant<|end_header_id|>\n\n<think>r2a<think>r2b</think>x</"
     "think>\n\na2<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\nplain<|eot_id|><|"
     "start_header_id|>assistant<|end_header_id|>\n\n"},
    {"llama31_no_tools", "multi",
     "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: "
     "December 2023\nToday Date: 26 Jul 2024\n\nYou are "
     "terse.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|><|start_header_id|>"
     "assistant<|end_header_id|>\n\nHello!<|eot_id|><|start_header_id|>user<|end_header_id|>\n\n2+"
     "2?<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"},
    {"llama31_no_tools", "nosystem",
     "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: "
     "December 2023\nToday Date: 26 Jul "
     "2024\n\n<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nspaced<|eot_id|><|start_header_"
     "id|>assistant<|end_header_id|>\n\n"},
    {"llama31_no_tools", "systems",
     "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: "
     "December 2023\nToday Date: 26 Jul "
     "2024\n\nS1<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nu<|eot_id|><|start_header_id|"
     ">system<|end_header_id|>\n\nS2<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nv<|eot_"
     "id|><|start_header_id|>assistant<|end_header_id|>\n\n"},
    {"llama31_no_tools", "think_past",
     "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: "
     "December 2023\nToday Date: 26 Jul "
     "2024\n\n<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nq1<|eot_id|><|start_header_id|>"
     "assistant<|end_header_id|>\n\n<think>\nr1\n</"
     "think>\n\na1<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nq2<|eot_id|><|start_header_"
     "id|>assistant<|end_header_id|>\n\n"},
    {"llama31_no_tools", "think_current",
     "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: "
     "December 2023\nToday Date: 26 Jul "
     "2024\n\n<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nq1<|eot_id|><|start_header_id|>"
     "assistant<|end_header_id|>\n\n<think>\nr1\n</"
     "think>\n\na1<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nq2<|eot_id|><|start_header_"
     "id|>assistant<|end_header_id|>\n\n<think>r2a<think>r2b</think>x</"
     "think>\n\na2<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\nplain<|eot_id|><|"
     "start_header_id|>assistant<|end_header_id|>\n\n"},
};

TEST(ChatTemplate, RendersLikeJinjaForEveryKnownFamily) {
    const std::map<std::string, Messages> convs = conversations();
    for (const Expected& e : kExpected) {
        const ChatTemplate t = ChatTemplate::recognise(read_template(e.template_name));
        EXPECT_EQ(t.render(convs.at(e.conversation)), e.prompt)
            << e.template_name << " / " << e.conversation << " (recognised as " << t.name() << ")";
    }
}

TEST(ChatTemplate, RecognisesTheVariants) {
    ChatTemplate t = ChatTemplate::recognise(read_template("qwen3"));
    EXPECT_EQ(t.format(), ChatFormat::ChatMl);
    EXPECT_TRUE(t.strips_reasoning);
    EXPECT_EQ(t.default_system, "");
    EXPECT_EQ(t.stop_tokens(), std::vector<std::string>{"<|im_end|>"});

    t = ChatTemplate::recognise(read_template("qwen25_no_tools"));
    EXPECT_FALSE(t.strips_reasoning);
    EXPECT_EQ(t.default_system,
              "You are Qwen, created by Alibaba Cloud. You are a helpful assistant.");

    t = ChatTemplate::recognise(read_template("llama3"));
    EXPECT_EQ(t.format(), ChatFormat::Llama3);
    EXPECT_EQ(t.name(), "llama3");
    EXPECT_FALSE(t.has_dated_system);
    EXPECT_EQ(t.stop_tokens(), std::vector<std::string>{"<|eot_id|>"});

    t = ChatTemplate::recognise(read_template("llama31_no_tools"));
    EXPECT_EQ(t.name(), "llama3.1");
    EXPECT_EQ(t.knowledge_cutoff, "December 2023");
    EXPECT_EQ(t.date, "26 Jul 2024");
}

TEST(ChatTemplate, PlainChatMlAndQwen2DefaultSystem) {
    // Qwen2's older form: the default system message inside the loop, double-quoted strings.
    const ChatTemplate t = ChatTemplate::recognise(
        "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
        "{{ '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' }}{% endif %}"
        "{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + "
        "'\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}"
        "{% endif %}");
    EXPECT_EQ(t.default_system, "You are a helpful assistant.");
    const Messages m = {{Role::User, "hi"}, {Role::Assistant, "<think>x</think>yo"}};
    EXPECT_EQ(
        t.render(m, false),
        "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
        "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n<think>x</think>yo<|im_end|>\n");

    const ChatTemplate plain = ChatTemplate::recognise(
        "{% for m in messages %}{{'<|im_start|>' + m['role'] + '\\n' + m['content'] + "
        "'<|im_end|>\\n'}}{% endfor %}");
    EXPECT_EQ(plain.name(), "chatml");
    EXPECT_EQ(plain.render(m),
              "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"
              "<think>x</think>yo<|im_end|>\n<|im_start|>assistant\n");
}

TEST(ChatTemplate, WithoutGenerationPromptEndsAfterTheLastTurn) {
    const Messages m = {{Role::User, "hi"}};
    EXPECT_EQ(ChatTemplate::recognise(read_template("llama3")).render(m, false),
              "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nhi<|eot_id|>");
    EXPECT_EQ(ChatTemplate::recognise(read_template("qwen3")).render(m, false),
              "<|im_start|>user\nhi<|im_end|>\n");
}

TEST(ChatTemplate, Qwen3ThinkingSwitch) {
    const ChatTemplate qwen = ChatTemplate::recognise(read_template("qwen3"));
    EXPECT_TRUE(qwen.has_thinking_switch);
    const Messages m = {{Role::User, "q"}};
    // As jinja2 renders them (the last lines of render_expected.py).
    EXPECT_EQ(qwen.render(m, true, false),
              "<|im_start|>user\nq<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n");
    EXPECT_EQ(qwen.render(m, true, true), "<|im_start|>user\nq<|im_end|>\n<|im_start|>assistant\n");
    EXPECT_EQ(qwen.render(m, false, false), "<|im_start|>user\nq<|im_end|>\n");
    // Templates without the switch ignore it.
    const ChatTemplate qwen25 = ChatTemplate::recognise(read_template("qwen25_no_tools"));
    EXPECT_FALSE(qwen25.has_thinking_switch);
    EXPECT_EQ(qwen25.render(m, true, false), qwen25.render(m, true, true));
}

std::string recognise_error(const std::string& source) {
    try {
        ChatTemplate::recognise(source);
    } catch (const Error& e) {
        return e.what();
    }
    return "no error";
}

TEST(ChatTemplate, UnknownTemplatesAreRefusedNamingWhatWasFound) {
    const std::string mistral =
        "{{ bos_token }}{% for message in messages %}{% if message['role'] == 'user' %}"
        "{{ '[INST] ' + message['content'] + ' [/INST]' }}{% else %}"
        "{{ message['content'] + eos_token }}{% endif %}{% endfor %}";
    std::string e = recognise_error(mistral);
    EXPECT_NE(e.find("not one tandem knows"), std::string::npos) << e;
    EXPECT_NE(e.find("[INST]"), std::string::npos) << e;
    EXPECT_NE(e.find("ChatML"), std::string::npos) << e;
    EXPECT_NE(e.find("it begins: {{ bos_token }}"), std::string::npos) << e;

    e = recognise_error("{% for m in messages %}<start_of_turn>{{ m.content }}{% endfor %}");
    EXPECT_NE(e.find("<start_of_turn>"), std::string::npos) << e;

    e = recognise_error("{{ messages }}");
    EXPECT_NE(e.find("none of them"), std::string::npos) << e;

    e = recognise_error("  \n");
    EXPECT_NE(e.find("has no chat_template"), std::string::npos) << e;

    // Half a family is not the family: <|im_start|> without <|im_end|>.
    e = recognise_error("{{ '<|im_start|>' + m.content }}");
    EXPECT_NE(e.find("<|im_start|>"), std::string::npos) << e;

    e = recognise_error("<|im_start|><|im_end|><|start_header_id|><|end_header_id|><|eot_id|>");
    EXPECT_NE(e.find("markers of both"), std::string::npos) << e;
}

BpeModel model_with(std::vector<std::string> specials, int32_t eos_index) {
    BpeModel m;
    for (int b = 0; b < 256; ++b) m.tokens.push_back(std::string(1, char(b)));
    for (size_t i = 0; i < specials.size(); ++i)
        m.added.push_back({specials[i], int32_t(256 + i), true});
    m.eos_id = eos_index < 0 ? -1 : 256 + eos_index;
    return m;
}

TEST(ChatTemplate, StopIdsComeFromTheTokenizer) {
    const ChatTemplate qwen = ChatTemplate::recognise(read_template("qwen3"));
    // A base Qwen: eos is <|endoftext|>, which also stops.
    BpeTokenizer tok(model_with({"<|endoftext|>", "<|im_start|>", "<|im_end|>"}, 0));
    EXPECT_EQ(qwen.stop_ids(tok), (std::vector<int32_t>{258, 256}));
    // An instruct Qwen: eos is <|im_end|> itself, listed once.
    BpeTokenizer instruct(model_with({"<|endoftext|>", "<|im_start|>", "<|im_end|>"}, 2));
    EXPECT_EQ(qwen.stop_ids(instruct), (std::vector<int32_t>{258}));

    const ChatTemplate llama = ChatTemplate::recognise(read_template("llama31_no_tools"));
    BpeTokenizer l3(
        model_with({"<|begin_of_text|>", "<|end_of_text|>", "<|eom_id|>", "<|eot_id|>"}, 1));
    EXPECT_EQ(llama.stop_ids(l3), (std::vector<int32_t>{259, 258, 257}));

    try {
        llama.stop_ids(tok);
        FAIL() << "no error";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("<|eot_id|>"), std::string::npos) << e.what();
        EXPECT_NE(std::string(e.what()).find("llama3.1"), std::string::npos) << e.what();
    }
}

}  // namespace
}  // namespace tandem::io

// Fine-tuning data: the exact ids and learned-token mask of a ChatML conversation and of a raw
// prompt/completion, the rows that packing makes, and the run data's batches: resumable from a
// cursor, split across ranks like one rank's, evaluated on padded held-out batches.
#include "train/sft_data.h"

#include <gtest/gtest.h>

#include <numeric>
#include <set>

#include "common/error_message.h"
#include "common/test_util.h"
#include "io/atomic_file.h"
#include "model/model.h"
#include "train/sft_render.h"
#include "train/sft_test_util.h"

namespace tandem::train {
namespace {

using model::kIgnoreIndex;
using testing::error_message;
using testing::kImEnd;
using testing::kImStart;

// The expected sequence, built piece by piece: bytes of text, or one special id.
struct Expected {
    std::vector<int32_t> tokens;
    std::vector<uint8_t> learned;
    Expected& text(const std::string& s, bool is_learned = false) {
        for (unsigned char c : s) add(c, is_learned);
        return *this;
    }
    Expected& add(int32_t id, bool is_learned = false) {
        tokens.push_back(id);
        learned.push_back(is_learned ? 1 : 0);
        return *this;
    }
};

io::ChatExample chat(std::vector<io::ChatMessage> turns) {
    return {.line = 1, .turns = std::move(turns)};
}

TEST(SftRender, ChatMlTwoTurnsLearnOnlyTheAssistantsContentAndEndOfTurn) {
    const SftRenderer r(testing::chatml_tokenizer());
    EXPECT_EQ(r.describe(), "chat template chatml");
    const auto User = io::Role::User, Assistant = io::Role::Assistant;
    const SftSequence s = r.render(
        chat({{User, "hi"}, {Assistant, "yo"}, {User, "ok"}, {Assistant, "go"}}), "c.jsonl:1");
    Expected e;
    e.add(kImStart).text("user\nhi").add(kImEnd).text("\n").add(kImStart).text("assistant\n");
    e.text("yo", true).add(kImEnd, true);
    e.text("\n")
        .add(kImStart)
        .text("user\nok")
        .add(kImEnd)
        .text("\n")
        .add(kImStart)
        .text("assistant\n");
    e.text("go", true).add(kImEnd, true);
    e.text("\n");  // after the end of turn: the model stops before it
    EXPECT_EQ(s.tokens, e.tokens);
    EXPECT_EQ(s.is_learned, e.learned);
    EXPECT_EQ(s.n_learned(), 6);
    EXPECT_EQ(s.line, 1);
}

std::string read_template(const std::string& name) {
    return io::read_file(testing::test_data_path("io/chat_templates/" + name + ".jinja"));
}

TEST(SftRender, Llama3LearnsTheReplyAndItsEotId) {
    io::BpeModel m = testing::byte_tokenizer();
    const std::vector<std::string> specials = {"<|begin_of_text|>", "<|start_header_id|>",
                                               "<|end_header_id|>", "<|eot_id|>"};
    for (size_t i = 0; i < specials.size(); ++i)
        m.added.push_back({specials[i], int32_t(257 + i), true});
    m.tokens.resize(261);
    m.chat_template = read_template("llama3");
    const SftRenderer r(m);
    const SftSequence s =
        r.render(chat({{io::Role::User, "hi"}, {io::Role::Assistant, "yo"}}), "c.jsonl:1");
    Expected e;
    e.add(257).add(258).text("user").add(259).text("\n\nhi").add(260);
    e.add(258).text("assistant").add(259).text("\n\n");
    e.text("yo", true).add(260, true);
    EXPECT_EQ(s.tokens, e.tokens);
    EXPECT_EQ(s.is_learned, e.learned);
}

TEST(SftRender, AConversationTheTemplateRewritesLaterIsABadLine) {
    // Qwen3 drops the <think> block of an assistant turn once a later user turn follows.
    io::BpeModel m = testing::chatml_tokenizer();
    m.chat_template = read_template("qwen3");
    const SftRenderer r(m);
    const auto User = io::Role::User, Assistant = io::Role::Assistant;
    const std::string msg = error_message([&] {
        r.render(
            chat({{User, "a"}, {Assistant, "<think>r</think>b"}, {User, "c"}, {Assistant, "d"}}),
            "c.jsonl:4");
    });
    EXPECT_NE(msg.find("c.jsonl:4: the chat template (chatml (qwen3 reasoning)) renders message 1 "
                       "differently"),
              std::string::npos)
        << msg;
    // The last turn keeps its reasoning: a conversation that ends there renders.
    EXPECT_GT(
        r.render(chat({{User, "a"}, {Assistant, "<think>r</think>b"}}), "c.jsonl:5").n_learned(),
        4);
}

TEST(SftRender, PromptCompletionIsAUserTurnAndAnAssistantTurn) {
    const SftRenderer r(testing::chatml_tokenizer());
    io::ChatExample pc = chat({{io::Role::User, "2+2="}, {io::Role::Assistant, "4"}});
    pc.is_prompt_completion = true;
    Expected e;
    e.add(kImStart).text("user\n2+2=").add(kImEnd).text("\n").add(kImStart).text("assistant\n");
    e.text("4", true).add(kImEnd, true).text("\n");
    const SftSequence s = r.render(pc, "c.jsonl:1");
    EXPECT_EQ(s.tokens, e.tokens);
    EXPECT_EQ(s.is_learned, e.learned);
}

TEST(SftRender, WithoutATemplatePromptAndCompletionAreConcatenatedRaw) {
    io::BpeModel m = testing::byte_tokenizer();
    m.eos_id = 256;
    const SftRenderer r(m);
    io::ChatExample pc = chat({{io::Role::User, "ab"}, {io::Role::Assistant, "cd"}});
    pc.is_prompt_completion = true;
    const SftSequence s = r.render(pc, "c.jsonl:1");
    Expected e;
    e.text("ab").text("cd", true).add(256, true);
    EXPECT_EQ(s.tokens, e.tokens);
    EXPECT_EQ(s.is_learned, e.learned);
    EXPECT_EQ(r.describe(),
              "raw: prompt completion <|endoftext|> (the model has no chat template)");

    // tandem's own tokenizers have no EOS: <|endoftext|>, their document separator, ends a reply.
    m.eos_id = -1;
    EXPECT_EQ(SftRenderer(m).render(pc, "c.jsonl:1").tokens, e.tokens);

    pc.is_prompt_completion = false;  // a messages line: needs a template
    const std::string m1 = error_message([&] { r.render(pc, "c.jsonl:9"); });
    EXPECT_NE(m1.find("c.jsonl:9: a \"messages\" line needs the model's chat template"),
              std::string::npos)
        << m1;
}

SftSequence seq(std::vector<int32_t> tokens, std::vector<uint8_t> learned, int64_t line = 0) {
    return {std::move(tokens), std::move(learned), line};
}

TEST(SftPacking, ExamplesFillRowsInOrderAndNeverStraddleTwo) {
    // T = 6: rows hold 7 ids. 3 + 4 ids fill row 0; 5 ids start row 1; 2 ids follow them.
    const std::vector<SftSequence> s = {
        seq({10, 11, 12}, {0, 1, 1}), seq({20, 21, 22, 23}, {0, 0, 1, 1}),
        seq({30, 31, 32, 33, 34}, {0, 0, 0, 1, 1}), seq({40, 41}, {0, 1})};
    const std::vector<uint32_t> order = {0, 1, 2, 3};
    const PackedRows p = pack_sequences(s, order, 6, /*pad_id=*/0);
    ASSERT_EQ(p.n_rows, 2);
    EXPECT_EQ(p.n_examples, 4);
    EXPECT_EQ(p.tokens,
              (std::vector<int32_t>{10, 11, 12, 20, 21, 22, /**/ 30, 31, 32, 33, 34, 40}));
    EXPECT_EQ(p.targets,
              (std::vector<int32_t>{11, 12, 20, 21, 22, 23, /**/ 31, 32, 33, 34, 40, 41}));
    // The target that starts an example (20, 40) is never learned; the row's end is learned
    // when it is an assistant token.
    EXPECT_EQ(p.loss_weights, (std::vector<float>{1, 1, 0, 0, 1, 1, /**/ 0, 0, 1, 1, 0, 1}));
    EXPECT_EQ(p.n_real, 12);

    // Another order leaves padding: ignored targets, weight 0.
    const std::vector<uint32_t> reversed = {2, 0};
    const PackedRows q = pack_sequences(s, reversed, 6, /*pad_id=*/99);
    ASSERT_EQ(q.n_rows, 2);
    EXPECT_EQ(q.tokens,
              (std::vector<int32_t>{30, 31, 32, 33, 34, 99, /**/ 10, 11, 12, 99, 99, 99}));
    EXPECT_EQ(q.targets, (std::vector<int32_t>{31, 32, 33, 34, kIgnoreIndex, kIgnoreIndex,
                                               /**/ 11, 12, kIgnoreIndex, kIgnoreIndex,
                                               kIgnoreIndex, kIgnoreIndex}));
    EXPECT_EQ(q.loss_weights, (std::vector<float>{0, 0, 1, 1, 0, 0, /**/ 1, 1, 0, 0, 0, 0}));
}

// Examples of 3 + i % 7 ids, example i's ids all 100 + i; the first n_train for training.
std::shared_ptr<const SftSplit> numbered_split(size_t n_train, size_t n_val) {
    auto split = std::make_shared<SftSplit>();
    for (size_t i = 0; i < n_train + n_val; ++i) {
        const size_t n = 3 + i % 7;
        std::vector<uint8_t> learned(n, 1);
        learned[0] = 0;
        (i < n_train ? split->train : split->val)
            .push_back(seq(std::vector<int32_t>(n, int32_t(100 + i)), learned));
    }
    return split;
}

std::vector<Batch> take(SftRunData& d, int n) {
    std::vector<Batch> out(n);
    for (Batch& b : out) d.next(b);
    return out;
}

TEST(SftRunData, ACursorResumesTheSameBatchesAcrossEpochs) {
    const auto split = numbered_split(40, 0);
    SftRunData a(split, {.local_batch = 4, .seq_len = 12}, 5, 0, "{}", "", 300);
    const std::vector<Batch> first = take(a, 3);
    const DataCursor at = a.cursor();
    const std::vector<Batch> rest = take(a, 20);  // past several epochs
    EXPECT_GT(a.cursor().epoch, at.epoch + 1);

    SftRunData b(split, {.local_batch = 4, .seq_len = 12}, 5, 0, "{}", "", 300);
    b.set_cursor(at);
    const std::vector<Batch> again = take(b, 20);
    for (size_t i = 0; i < rest.size(); ++i) {
        EXPECT_EQ(again[i].tokens, rest[i].tokens) << i;
        EXPECT_EQ(again[i].targets, rest[i].targets) << i;
        EXPECT_EQ(again[i].loss_weights, rest[i].loss_weights) << i;
    }
    // Every example is seen once per epoch: epoch 0's rows hold each id once.
    const PackedRows& rows = a.rows_of_epoch(0);
    std::set<int32_t> seen(rows.tokens.begin(), rows.tokens.end());
    seen.erase(0);  // padding
    EXPECT_EQ(seen.size(), 40u);
    EXPECT_NE(a.rows_of_epoch(1).tokens, rows.tokens) << "each epoch has its own order";
}

TEST(SftRunData, TwoRanksTakeTheRowsOfOneRanksBatch) {
    const auto split = numbered_split(40, 0);
    SftRunData one(split, {.local_batch = 4, .seq_len = 12}, 5, 0, "{}", "", 300);
    SftRunData r0(split, {.local_batch = 2, .seq_len = 12, .rank = 0, .n_ranks = 2}, 5, 0, "{}", "",
                  300);
    SftRunData r1(split, {.local_batch = 2, .seq_len = 12, .rank = 1, .n_ranks = 2}, 5, 0, "{}", "",
                  300);
    for (int step = 0; step < 12; ++step) {
        Batch whole, b0, b1;
        one.next(whole);
        r0.next(b0);
        r1.next(b1);
        std::vector<int32_t> joined = b0.tokens;
        joined.insert(joined.end(), b1.tokens.begin(), b1.tokens.end());
        EXPECT_EQ(joined, whole.tokens) << step;
        EXPECT_EQ(r0.cursor(), one.cursor());
        EXPECT_EQ(r1.cursor(), one.cursor());
    }
}

TEST(SftRunData, HeldOutBatchesArePaddedWithRowsThatCountForNothing) {
    // Held-out examples 4..8 have 7, 8, 9, 3 and 4 ids: packed in file order into rows of 9 ids,
    // [104 x7] [105 x8] [106 x9] [107 x3, 108 x4].
    const auto split = numbered_split(4, 5);
    SftRunData d(split, {.local_batch = 3, .seq_len = 8}, 5, 0, "{}", "", 300);
    ASSERT_EQ(d.val_rows().n_rows, 4);
    EXPECT_EQ(d.n_eval_batches(), 2);
    Batch last;
    d.eval_batch(1, last);
    ASSERT_EQ(last.B, 3);
    EXPECT_EQ(last.tokens[0], 107);
    EXPECT_EQ(last.tokens[3], 108);
    EXPECT_EQ(last.targets[2], 108);
    EXPECT_EQ(last.loss_weights[2], 0) << "the target that starts an example";
    EXPECT_EQ(last.loss_weights[3], 1);
    for (int64_t i = 8; i < 24; ++i) {  // rows 1 and 2: padding
        EXPECT_EQ(last.targets[i], kIgnoreIndex);
        EXPECT_EQ(last.loss_weights[i], 0);
    }
}

TEST(SftSplit, HoldsOutAFixedDisjointShare) {
    std::vector<SftSequence> s;
    for (int i = 0; i < 100; ++i) s.push_back(seq({i, i}, {0, 1}, i + 1));
    const SftSplit a = split_examples(s, 0.1, 3), b = split_examples(s, 0.1, 3),
                   c = split_examples(s, 0.1, 4);
    ASSERT_EQ(a.val.size(), 10u);
    EXPECT_EQ(a.train.size(), 90u);
    std::set<int64_t> val, train;
    for (const auto& x : a.val) val.insert(x.line);
    for (const auto& x : a.train) train.insert(x.line);
    for (int64_t line : val) EXPECT_EQ(train.count(line), 0u);
    std::set<int64_t> val_b, val_c;
    for (const auto& x : b.val) val_b.insert(x.line);
    for (const auto& x : c.val) val_c.insert(x.line);
    EXPECT_EQ(val, val_b);
    EXPECT_NE(val, val_c);
    EXPECT_EQ(split_examples(s, 0.001, 3).val.size(), 1u)
        << "a fraction above 0 holds out at least one";
    EXPECT_EQ(split_examples(s, 0, 3).val.size(), 0u);
}

}  // namespace
}  // namespace tandem::train

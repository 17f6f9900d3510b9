// The tasks: deterministic problems, disjoint splits, worked solutions that earn the full reward,
// and rewards that refuse reused numbers, wrong results and broken formats.
#include "rl/task.h"

#include <gtest/gtest.h>

#include <set>

#include "common/error_message.h"

namespace tandem::rl {
namespace {

using testing::error_message;

TEST(Task, ProblemsArePureFunctionsOfSeedSplitAndIndex) {
    const auto task = make_task("addition:3");
    const Problem a = task->problem(Split::Train, 7, 42), b = task->problem(Split::Train, 7, 42);
    EXPECT_EQ(a.key, b.key);
    EXPECT_NE(a.key, task->problem(Split::Train, 8, 42).key);
    EXPECT_NE(a.key, task->problem(Split::Train, 7, 43).key);
}

TEST(Task, TrainAndHeldOutNeverOverlap) {
    for (const char* name : {"addition:2", "multiplication:2", "countdown:4"}) {
        const auto task = make_task(name);
        std::set<std::string> train, held_out;
        for (uint64_t i = 0; i < 2000; ++i) train.insert(task->problem(Split::Train, 1, i).key);
        for (uint64_t seed : {1, 2, 3})
            for (uint64_t i = 0; i < 300; ++i) {
                const Problem p = task->problem(Split::HeldOut, seed, i);
                EXPECT_EQ(split_of(p.key), Split::HeldOut);
                EXPECT_FALSE(train.contains(p.key)) << name << ": " << p.key;
                held_out.insert(p.key);
            }
        EXPECT_GT(held_out.size(), 100u) << name << ": the held-out set is too small";
    }
}

TEST(Task, WorkedCompletionsEarnTheFullReward) {
    for (const char* name : {"addition:1", "addition:5", "multiplication:1", "multiplication:3",
                             "countdown:3", "countdown:6"}) {
        const auto task = make_task(name);
        EXPECT_EQ(task->name(), name);
        for (uint64_t i = 0; i < 200; ++i) {
            const Problem p = task->problem(Split::Train, 3, i);
            const Reward r = task->reward(p, task->worked_completion(p), 0.1);
            ASSERT_EQ(r.correct, 1.0) << name << " " << p.key << ": " << task->worked_completion(p);
            EXPECT_EQ(r.format, 1.0);
            EXPECT_DOUBLE_EQ(r.total, 1.1);
        }
    }
}

TEST(Task, WorkedStepsShowTheSchoolbookMethod) {
    const auto add = make_task("addition:3");
    Problem p = add->problem(Split::Train, 0, 0);
    EXPECT_EQ(add->prompt(p), p.question + "\n");
    // A hand-made problem through the same reward: 347 + 598 = 945.
    p.target = 945;
    EXPECT_EQ(add->reward(p, "<think>7+8=15, 4+9+1=14, 3+5+1=9</think><answer>945</answer>", 0.5).total, 1.5);
    EXPECT_EQ(add->reward(p, "<think></think><answer>0945</answer>", 0.5).correct, 0.0);
    EXPECT_EQ(add->reward(p, "<answer>945</answer>", 0.5).total, 1.0);  // right, unformatted
}

TEST(Task, CountdownChecksTheNumbersAsAMultiset) {
    const auto task = make_task("countdown:4");
    Problem p;
    p.numbers = {3, 4, 25, 25};
    p.target = 97;
    const auto correct = [&](std::string_view answer) { return task->is_correct(p, answer); };
    EXPECT_TRUE(correct("25*4-3"));
    EXPECT_FALSE(correct("(25+25)*4/2-3"));  // 2 is not given
    EXPECT_FALSE(correct("25*4-3+25-25+3-3"));       // 3 used three times
    EXPECT_FALSE(correct("25*4-4"));                 // 4 reused
    EXPECT_FALSE(correct("25*4"));                   // wrong value
    EXPECT_FALSE(correct("25*4-3/0"));               // division by zero
    EXPECT_FALSE(correct("25*4-3="));                // malformed
    EXPECT_FALSE(correct(""));
    p.target = 62;
    EXPECT_TRUE(correct("25+25+4*3"));  // 25 is given twice
    EXPECT_FALSE(correct("25+25+25-4*3-1"));
    p.target = 24;
    p.numbers = {3, 3, 8, 8};
    EXPECT_TRUE(correct("8/(3-8/3)"));  // 8/3 is not an integer on the way: exact arithmetic
}

TEST(Task, FormatRewardNeedsThinkThenAnswer) {
    const auto formatted = [](std::string_view c) { return parse_completion(c).is_formatted; };
    EXPECT_TRUE(formatted("<think>a</think><answer>5</answer>"));
    EXPECT_TRUE(formatted("  <think>\na b\n</think>\n<answer> 5 </answer>\n"));
    EXPECT_FALSE(formatted("<answer>5</answer>"));
    EXPECT_FALSE(formatted("<think>a</think>"));
    EXPECT_FALSE(formatted("<think>a</think><answer></answer>"));               // empty answer
    EXPECT_FALSE(formatted("<think>a</think><answer>5</answer> and more"));     // trailing text
    EXPECT_FALSE(formatted("<think>a<answer>4</answer></think><answer>5</answer>"));  // nested tag
    EXPECT_FALSE(formatted("<think>a</think><answer>5"));                         // unclosed
    EXPECT_FALSE(formatted("<answer>5</answer><think>a</think>"));               // wrong order
    EXPECT_EQ(parse_completion("x <answer> 12 </answer> y <answer>3</answer>").answer, "12");
    EXPECT_FALSE(parse_completion("<answer>12").has_answer);
}

TEST(Task, UnknownNamesAndKnobsAreRefusedByName) {
    EXPECT_NE(error_message([] { make_task("subtraction"); }).find("unknown task 'subtraction'"),
              std::string::npos);
    EXPECT_NE(error_message([] { make_task("addition:x"); }).find("'x' after the colon"), std::string::npos);
    EXPECT_NE(error_message([] { make_task("addition:12"); }).find("digits must be in [1, 9]"), std::string::npos);
    EXPECT_NE(error_message([] { make_task("countdown:2"); }).find("countdown:2"), std::string::npos);
}

}  // namespace
}  // namespace tandem::rl

// Verifiable-reward tasks: problems generated from a seed, a prompt template, a worked solution
// (for supervised warm-up) and rewards for a completion: correctness, checked exactly, and
// format, `<think>…</think><answer>…</answer>`. Train and held-out problems never overlap: a
// problem's split is a function of its canonical key's hash, and generation redraws until the
// split matches. The tasks themselves live in arithmetic.cpp and countdown.cpp.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace tandem::rl {

enum class Split { Train, HeldOut };
const char* split_name(Split split);  // "train", "held-out"

struct Problem {
    std::string key;       // canonical form ("347+598", "3 7 25 100 -> 291"): decides the split
    std::string question;  // the prompt's text, without the template around it
    std::string answer;    // one correct answer, as it goes between <answer> tags
    std::string thinking;  // worked steps that lead to `answer`, for supervised warm-up
    std::vector<int64_t> numbers;  // the operands (arithmetic) or the given numbers (countdown)
    int64_t target = 0;            // the result the answer must reach
};

// The parts of a completion that the format asks for.
struct ParsedCompletion {
    bool is_formatted = false;  // exactly <think>…</think><answer>…</answer>, spaces around
    bool has_answer = false;    // an <answer>…</answer> pair somewhere
    std::string answer;         // the first one's content, spaces trimmed
};
ParsedCompletion parse_completion(std::string_view completion);

struct Reward {
    double correct = 0;  // 1 when the answer is right
    double format = 0;   // 1 when the completion has the format
    double total = 0;    // correct + format_weight * format
};

class Task {
public:
    virtual ~Task() = default;
    // The name that make_task() takes back ("addition:3").
    virtual std::string name() const = 0;
    // Problem `index` of `split`: a pure function of (seed, split, index).
    Problem problem(Split split, uint64_t seed, uint64_t index) const;
    // Whether `answer` (the content of the answer tags) solves `problem`.
    virtual bool is_correct(const Problem& problem, std::string_view answer) const = 0;

    // What the model sees: the question and a line that asks for the format.
    std::string prompt(const Problem& problem) const;
    // The completion a worked example teaches: <think>steps</think><answer>answer</answer>.
    std::string worked_completion(const Problem& problem) const;
    Reward reward(const Problem& problem, std::string_view completion, double format_weight) const;

protected:
    // A candidate problem from a random stream; `draw(lo, hi)` is uniform on [lo, hi].
    virtual Problem generate(const std::function<int64_t(int64_t, int64_t)>& draw) const = 0;
};

enum class ArithmeticOp { Add, Multiply };
std::unique_ptr<Task> make_arithmetic_task(ArithmeticOp op, int digits);  // arithmetic.cpp
std::unique_ptr<Task> make_countdown_task(int n_numbers);                  // countdown.cpp

// "addition[:digits]", "multiplication[:digits]" (digits per operand, 1..9, default 3 and 2)
// and "countdown[:numbers]" (given numbers, 3..6, default 4). Throws Error naming the task and
// the accepted names.
std::unique_ptr<Task> make_task(std::string_view name);

// Which split a problem's key belongs to: one in five keys is held out.
Split split_of(std::string_view key);

}  // namespace tandem::rl

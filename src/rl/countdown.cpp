// Countdown: reach a target from n given numbers with + - * /, each number used at most once.
// A problem is made by combining a random subset of the numbers left to right with random
// operations whose intermediate results stay positive integers, so every target is reachable;
// an answer is checked by evaluating it exactly (expression.h) and matching its numbers against
// the given ones as a multiset.
#include <algorithm>
#include <map>
#include <string>

#include "core/error.h"
#include "rl/expression.h"
#include "rl/task.h"

namespace tandem::rl {

namespace {

constexpr int64_t kMaxNumber = 25;   // the numbers are drawn from [1, kMaxNumber]
constexpr int64_t kMaxTarget = 999;  // targets in [1, kMaxTarget]

class CountdownTask final : public Task {
public:
    explicit CountdownTask(int n_numbers) : n_numbers_(n_numbers) {}

    std::string name() const override { return "countdown:" + std::to_string(n_numbers_); }

    bool is_correct(const Problem& problem, std::string_view answer) const override {
        const Evaluation e = evaluate_expression(answer);
        if (!e.value || *e.value != Rational{problem.target, 1}) return false;
        std::map<int64_t, int> left;
        for (int64_t n : problem.numbers) ++left[n];
        for (int64_t n : e.numbers)
            if (--left[n] < 0) return false;  // not given, or used more often than given
        return true;
    }

protected:
    Problem generate(const std::function<int64_t(int64_t, int64_t)>& draw) const override {
        for (;;) {
            std::vector<int64_t> numbers(n_numbers_);
            for (int64_t& n : numbers) n = draw(1, kMaxNumber);
            // A random order of a random subset of at least two of them.
            std::vector<int64_t> order = numbers;
            for (size_t i = order.size(); i > 1; --i) std::swap(order[i - 1], order[draw(0, int64_t(i) - 1)]);
            order.resize(draw(2, n_numbers_));

            int64_t value = order[0];
            std::string expr = std::to_string(value), steps;
            bool is_sum = false;  // the expression so far ends in + or - at the top level
            for (size_t i = 1; i < order.size(); ++i) {
                const int64_t x = order[i];
                const char op = "+-*/"[draw(0, 3)];
                int64_t next = 0;
                if (op == '+') next = value + x;
                if (op == '-') next = value - x;
                if (op == '*') next = value * x;
                if (op == '/') next = value % x == 0 ? value / x : 0;
                if (next <= 0 || next > 100 * kMaxTarget) {
                    steps.clear();
                    break;  // not a positive integer: draw another problem
                }
                if ((op == '*' || op == '/') && is_sum) expr = "(" + expr + ")";
                expr += std::string(1, op) + std::to_string(x);
                is_sum = op == '+' || op == '-';
                if (!steps.empty()) steps += ", ";
                steps += std::to_string(value) + op + std::to_string(x) + "=" + std::to_string(next);
                value = next;
            }
            if (steps.empty() || value > kMaxTarget) continue;
            if (std::find(numbers.begin(), numbers.end(), value) != numbers.end()) continue;  // trivial

            Problem p;
            std::sort(numbers.begin(), numbers.end());
            p.numbers = numbers;
            p.target = value;
            std::string list;
            for (int64_t n : numbers) list += (list.empty() ? "" : " ") + std::to_string(n);
            p.key = list + " -> " + std::to_string(value);
            p.question = "Using " + list + " make " + std::to_string(value) + ".";
            p.answer = expr;
            p.thinking = steps;
            return p;
        }
    }

private:
    int n_numbers_;
};

}  // namespace

std::unique_ptr<Task> make_countdown_task(int n_numbers) {
    if (n_numbers < 3 || n_numbers > 6)
        throw Error("task countdown:", n_numbers, ": the count of given numbers must be in [3, 6]");
    return std::make_unique<CountdownTask>(n_numbers);
}

}  // namespace tandem::rl

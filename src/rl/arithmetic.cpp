// Multi-digit addition and multiplication: two operands of exactly `digits` digits each. The
// worked steps are the schoolbook ones: column sums with carries, or one partial product per
// digit of the second operand and their sum.
#include <cstdint>
#include <string>

#include "core/error.h"
#include "rl/task.h"

namespace tandem::rl {

namespace {

class ArithmeticTask final : public Task {
public:
    ArithmeticTask(ArithmeticOp op, int digits) : op_(op), digits_(digits) {}

    std::string name() const override {
        return std::string(op_ == ArithmeticOp::Add ? "addition:" : "multiplication:") +
               std::to_string(digits_);
    }

    bool is_correct(const Problem& problem, std::string_view answer) const override {
        // The integer as written, nothing around it: "945", not "945.0" or "0945".
        if (answer.empty() || answer.size() > 19) return false;
        for (char c : answer)
            if (c < '0' || c > '9') return false;
        if (answer.size() > 1 && answer[0] == '0') return false;
        return std::stoll(std::string(answer)) == problem.target;
    }

protected:
    Problem generate(const std::function<int64_t(int64_t, int64_t)>& draw) const override {
        int64_t lo = 1;
        for (int i = 1; i < digits_; ++i) lo *= 10;
        const int64_t hi = lo * 10 - 1;
        const int64_t a = draw(digits_ == 1 ? 0 : lo, hi), b = draw(digits_ == 1 ? 0 : lo, hi);
        Problem p;
        p.numbers = {a, b};
        const char sign = op_ == ArithmeticOp::Add ? '+' : '*';
        p.key = std::to_string(a) + sign + std::to_string(b);
        p.question = "What is " + std::to_string(a) + " " + sign + " " + std::to_string(b) + "?";
        p.target = op_ == ArithmeticOp::Add ? a + b : a * b;
        p.answer = std::to_string(p.target);
        p.thinking = op_ == ArithmeticOp::Add ? addition_steps(a, b) : multiplication_steps(a, b);
        return p;
    }

private:
    // "7+8=15, 4+9+1=14, 3+5+1=9": columns from the right, each with the carry it takes in.
    static std::string addition_steps(int64_t a, int64_t b) {
        std::string out;
        int64_t carry = 0;
        while (a > 0 || b > 0 || out.empty()) {
            const int64_t x = a % 10, y = b % 10, s = x + y + carry;
            if (!out.empty()) out += ", ";
            out += std::to_string(x) + "+" + std::to_string(y);
            if (carry) out += "+" + std::to_string(carry);
            out += "=" + std::to_string(s);
            carry = s / 10;
            a /= 10;
            b /= 10;
        }
        return out;
    }

    // "347*8=2776, 347*90=31230, 2776+31230=34006": one partial product per digit of b.
    static std::string multiplication_steps(int64_t a, int64_t b) {
        std::string out, sum;
        int64_t place = 1, total = 0;
        for (int64_t rest = b; rest > 0 || place == 1; rest /= 10, place *= 10) {
            const int64_t part = a * (rest % 10) * place;
            if (!out.empty()) out += ", ";
            out += std::to_string(a) + "*" + std::to_string((rest % 10) * place) + "=" + std::to_string(part);
            sum += (sum.empty() ? "" : "+") + std::to_string(part);
            total += part;
            if (rest < 10) break;
        }
        if (b >= 10) out += ", " + sum + "=" + std::to_string(total);
        return out;
    }

    ArithmeticOp op_;
    int digits_;
};

}  // namespace

std::unique_ptr<Task> make_arithmetic_task(ArithmeticOp op, int digits) {
    if (digits < 1 || digits > 9)
        throw Error("task ", op == ArithmeticOp::Add ? "addition" : "multiplication", ":", digits,
                    ": digits must be in [1, 9] (the result must fit in 64 bits)");
    return std::make_unique<ArithmeticTask>(op, digits);
}

}  // namespace tandem::rl

// Exact arithmetic over the answers of the countdown task: a rational number type and a parser
// and evaluator for expressions of non-negative integers with + - * / and parentheses. What is
// wrong with an expression (a stray character, division by zero, overflow) comes back as a
// reason, never as an exception: a model's malformed answer is data, not an error.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace tandem::rl {

// num / den in lowest terms with den > 0. Operations report overflow of int64 as nullopt.
struct Rational {
    int64_t num = 0, den = 1;

    static std::optional<Rational> of(int64_t num, int64_t den);  // nullopt when den == 0
    bool operator==(const Rational&) const = default;
    bool is_integer() const { return den == 1; }
    std::string to_string() const;  // "7" or "-3/4"
};

std::optional<Rational> add(Rational a, Rational b);
std::optional<Rational> subtract(Rational a, Rational b);
std::optional<Rational> multiply(Rational a, Rational b);
std::optional<Rational> divide(Rational a, Rational b);  // nullopt also for b == 0

struct Evaluation {
    std::optional<Rational> value;  // set when the expression is well formed and computable
    std::vector<int64_t> numbers;   // the literals in the order they appear
    std::string error;              // why value is unset ("division by zero at column 7", ...)
};

// Grammar: expr := term (('+' | '-') term)*; term := factor (('*' | '/') factor)*;
// factor := integer | '(' expr ')'. Spaces anywhere; '×' and '÷' stand for '*' and '/'. No
// unary minus, no decimals, and no leading zeros ("07"): a countdown answer combines the given
// numbers as written.
Evaluation evaluate_expression(std::string_view text);

}  // namespace tandem::rl

// Rational arithmetic in int64 with 128-bit intermediates, and a recursive-descent evaluator.
#include "rl/expression.h"

#include <cstdlib>
#include <numeric>

#include "core/error.h"

namespace tandem::rl {

namespace {

using Wide = __int128;

std::optional<Rational> reduced(Wide num, Wide den) {
    if (den == 0) return std::nullopt;
    if (den < 0) num = -num, den = -den;
    Wide a = num < 0 ? -num : num, b = den;
    while (b != 0) a = a % b, std::swap(a, b);  // a ends as gcd(|num|, den), at least 1 (den > 0)
    num /= a;
    den /= a;
    constexpr Wide lo = INT64_MIN + Wide(1), hi = INT64_MAX;
    if (num < lo || num > hi || den > hi) return std::nullopt;
    return Rational{int64_t(num), int64_t(den)};
}

// Recursive descent over the text; `pos` is the byte offset of the next character.
class Parser {
public:
    explicit Parser(std::string_view text) : text_(text) {}

    Evaluation run() {
        Evaluation out;
        skip_spaces();
        if (pos_ == text_.size()) return fail(out, "the expression is empty");
        std::optional<Rational> value = expr(out);
        if (!value) return out;
        skip_spaces();
        if (pos_ != text_.size()) return fail(out, unexpected());
        out.value = value;
        return out;
    }

private:
    std::string_view text_;
    size_t pos_ = 0;
    int depth_ = 0;

    Evaluation& fail(Evaluation& out, const std::string& why) {
        if (out.error.empty()) out.error = why;
        out.value.reset();
        return out;
    }
    std::string column(size_t at) const { return " at column " + std::to_string(at + 1); }
    std::string column() const { return column(pos_); }
    std::string unexpected() const {
        if (pos_ >= text_.size()) return "the expression ends too early";
        return "unexpected '" + std::string(1, text_[pos_]) + "'" + column();
    }
    void skip_spaces() {
        while (pos_ < text_.size() && (text_[pos_] == ' ' || text_[pos_] == '\t' || text_[pos_] == '\n'))
            ++pos_;
    }
    // The operator at pos_ among `ops` ('*' also for "×", '/' for "÷"), consumed; 0 for none.
    char take_operator(std::string_view ops) {
        skip_spaces();
        if (pos_ >= text_.size()) return 0;
        const std::string_view rest = text_.substr(pos_);
        for (char op : ops) {
            if (rest[0] == op) return ++pos_, op;
            const std::string_view alias = op == '*' ? "\u00d7" : op == '/' ? "\u00f7" : "";
            if (!alias.empty() && rest.starts_with(alias)) return pos_ += alias.size(), op;
        }
        return 0;
    }

    std::optional<Rational> expr(Evaluation& out) {
        std::optional<Rational> left = term(out);
        while (left) {
            skip_spaces();
            const size_t at = pos_;
            const char op = take_operator("+-");
            if (!op) break;
            const std::optional<Rational> right = term(out);
            if (!right) return std::nullopt;
            left = op == '+' ? add(*left, *right) : subtract(*left, *right);
            if (!left) return fail(out, "the value overflows" + column(at)), std::nullopt;
        }
        return left;
    }

    std::optional<Rational> term(Evaluation& out) {
        std::optional<Rational> left = factor(out);
        while (left) {
            skip_spaces();
            const size_t at = pos_;
            const char op = take_operator("*/");
            if (!op) break;
            const std::optional<Rational> right = factor(out);
            if (!right) return std::nullopt;
            if (op == '/' && right->num == 0)
                return fail(out, "division by zero" + column(at)), std::nullopt;
            left = op == '*' ? multiply(*left, *right) : divide(*left, *right);
            if (!left) return fail(out, "the value overflows" + column(at)), std::nullopt;
        }
        return left;
    }

    std::optional<Rational> factor(Evaluation& out) {
        skip_spaces();
        if (pos_ >= text_.size()) return fail(out, "the expression ends too early"), std::nullopt;
        const char c = text_[pos_];
        if (c == '(') {
            if (++depth_ > 64) return fail(out, "parentheses nest deeper than 64" + column()), std::nullopt;
            ++pos_;
            std::optional<Rational> inner = expr(out);
            if (!inner) return std::nullopt;
            skip_spaces();
            if (pos_ >= text_.size() || text_[pos_] != ')')
                return fail(out, "missing ')'" + column()), std::nullopt;
            ++pos_;
            --depth_;
            return inner;
        }
        if (c < '0' || c > '9') return fail(out, unexpected()), std::nullopt;
        const size_t begin = pos_;
        while (pos_ < text_.size() && text_[pos_] >= '0' && text_[pos_] <= '9') ++pos_;
        const std::string_view digits = text_.substr(begin, pos_ - begin);
        if (digits.size() > 1 && digits[0] == '0') {
            pos_ = begin;
            return fail(out, "number " + std::string(digits) + " has a leading zero" + column()), std::nullopt;
        }
        if (digits.size() > 18) {
            pos_ = begin;
            return fail(out, "number " + std::string(digits) + " is too large" + column()), std::nullopt;
        }
        const int64_t n = std::strtoll(std::string(digits).c_str(), nullptr, 10);
        out.numbers.push_back(n);
        return Rational{n, 1};
    }
};

}  // namespace

std::optional<Rational> Rational::of(int64_t num, int64_t den) { return reduced(num, den); }

std::string Rational::to_string() const {
    return den == 1 ? std::to_string(num) : std::to_string(num) + "/" + std::to_string(den);
}

std::optional<Rational> add(Rational a, Rational b) {
    return reduced(Wide(a.num) * b.den + Wide(b.num) * a.den, Wide(a.den) * b.den);
}
std::optional<Rational> subtract(Rational a, Rational b) {
    return reduced(Wide(a.num) * b.den - Wide(b.num) * a.den, Wide(a.den) * b.den);
}
std::optional<Rational> multiply(Rational a, Rational b) {
    return reduced(Wide(a.num) * b.num, Wide(a.den) * b.den);
}
std::optional<Rational> divide(Rational a, Rational b) {
    if (b.num == 0) return std::nullopt;
    return reduced(Wide(a.num) * b.den, Wide(a.den) * b.num);
}

Evaluation evaluate_expression(std::string_view text) { return Parser(text).run(); }

}  // namespace tandem::rl

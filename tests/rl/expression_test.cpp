// The countdown answer parser: precedence, exact rationals, and every way an answer can be wrong.
#include "rl/expression.h"

#include <gtest/gtest.h>

namespace tandem::rl {
namespace {

Rational value(std::string_view text) {
    const Evaluation e = evaluate_expression(text);
    EXPECT_TRUE(e.value.has_value()) << text << ": " << e.error;
    return e.value.value_or(Rational{-999, 1});
}

std::string error(std::string_view text) {
    const Evaluation e = evaluate_expression(text);
    EXPECT_FALSE(e.value.has_value()) << text;
    return e.error;
}

TEST(Expression, FollowsPrecedenceAndParentheses) {
    EXPECT_EQ(value("2+3*4"), (Rational{14, 1}));
    EXPECT_EQ(value("(2+3)*4"), (Rational{20, 1}));
    EXPECT_EQ(value("10-4-3"), (Rational{3, 1}));  // left to right
    EXPECT_EQ(value("24/4/3"), (Rational{2, 1}));
    EXPECT_EQ(value(" ( 7 ) "), (Rational{7, 1}));
    EXPECT_EQ(value("6\u00d77\u00f73"), (Rational{14, 1}));  // × and ÷
}

TEST(Expression, DivisionIsExact) {
    EXPECT_EQ(value("7/2"), (Rational{7, 2}));
    EXPECT_EQ(value("1/3+1/3+1/3"), (Rational{1, 1}));  // floating point would not give exactly 1
    EXPECT_EQ(value("(8/3)*3"), (Rational{8, 1}));
    EXPECT_EQ(value("3-5"), (Rational{-2, 1}));
    EXPECT_EQ(Rational::of(6, -4)->to_string(), "-3/2");
}

TEST(Expression, ReportsTheNumbersInOrder) {
    const Evaluation e = evaluate_expression("(25-3)*4+25");
    EXPECT_EQ(e.numbers, (std::vector<int64_t>{25, 3, 4, 25}));
}

TEST(Expression, DivisionByZeroIsAnAnswerErrorNotACrash) {
    EXPECT_EQ(error("5/0"), "division by zero at column 2");
    EXPECT_EQ(error("5/(3-3)"), "division by zero at column 2");
}

TEST(Expression, MalformedAnswersSayWhatIsWrong) {
    EXPECT_EQ(error(""), "the expression is empty");
    EXPECT_EQ(error("   "), "the expression is empty");
    EXPECT_EQ(error("2+"), "the expression ends too early");
    EXPECT_EQ(error("(2+3"), "missing ')' at column 5");
    EXPECT_EQ(error("2+3)"), "unexpected ')' at column 4");
    EXPECT_EQ(error("-3+5"), "unexpected '-' at column 1");  // no unary minus
    EXPECT_EQ(error("2.5*2"), "unexpected '.' at column 2");
    EXPECT_EQ(error("2 3"), "unexpected '3' at column 3");
    EXPECT_EQ(error("07+1"), "number 07 has a leading zero at column 1");
    EXPECT_EQ(error("x"), "unexpected 'x' at column 1");
    EXPECT_EQ(error("2**3"), "unexpected '*' at column 3");
    EXPECT_EQ(error("1234567890123456789"), "number 1234567890123456789 is too large at column 1");
}

TEST(Expression, OverflowIsReportedNotWrapped) {
    EXPECT_EQ(error("999999999999999999*999999999999999999"), "the value overflows at column 19");
    EXPECT_EQ(error(std::string(70, '(') + "1" + std::string(70, ')')),
              "parentheses nest deeper than 64 at column 65");
}

}  // namespace
}  // namespace tandem::rl

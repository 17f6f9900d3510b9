// What every task shares: the split rule, drawing problems from a seed, the prompt template,
// parsing a completion's format, rewards, and the table of task names.
#include "rl/task.h"

#include <cstring>

#include "core/checksum.h"
#include "core/error.h"
#include "core/rng.h"

namespace tandem::rl {

const char* split_name(Split split) { return split == Split::Train ? "train" : "held-out"; }

Split split_of(std::string_view key) {
    // A fixed salt, so that the split does not line up with other uses of xxh3 over the same text.
    const uint64_t h = xxh3_64(key.data(), key.size()) ^ 0x9e3779b97f4a7c15ULL;
    return h % 5 == 0 ? Split::HeldOut : Split::Train;
}

Problem Task::problem(Split split, uint64_t seed, uint64_t index) const {
    // One random stream per (seed, split, index); candidates are drawn from it until one falls
    // in the split, so no held-out problem can ever be generated as a training one.
    const uint64_t words[3] = {seed, uint64_t(split), index};
    const RngKey key{.seed = xxh3_64(words, sizeof words), .purpose = RngPurpose::DataOrder};
    uint64_t counter = 0;
    const auto draw = [&](int64_t lo, int64_t hi) {
        TANDEM_ASSERT(lo <= hi, lo, hi);
        const uint64_t r = (uint64_t(random_u32(key, counter)) << 32) | random_u32(key, counter + 1);
        counter += 2;
        return lo + int64_t(r % uint64_t(hi - lo + 1));
    };
    for (int attempt = 0; attempt < 10000; ++attempt) {
        Problem p = generate(draw);
        if (split_of(p.key) == split) return p;
    }
    // Only a task with almost no distinct problems gets here (every key in one split).
    throw Error("task ", name(), ": no ", split_name(split), " problem found in 10000 draws; the ",
                "task has too few distinct problems (raise its difficulty)");
}

std::string Task::prompt(const Problem& problem) const { return problem.question + "\n"; }

std::string Task::worked_completion(const Problem& problem) const {
    return "<think>" + problem.thinking + "</think><answer>" + problem.answer + "</answer>";
}

namespace {

std::string_view trim(std::string_view s) {
    while (!s.empty() && std::strchr(" \t\r\n", s.front())) s.remove_prefix(1);
    while (!s.empty() && std::strchr(" \t\r\n", s.back())) s.remove_suffix(1);
    return s;
}

}  // namespace

ParsedCompletion parse_completion(std::string_view completion) {
    ParsedCompletion out;
    const size_t open = completion.find("<answer>");
    const size_t close = open == std::string_view::npos ? open : completion.find("</answer>", open);
    if (close != std::string_view::npos) {
        out.has_answer = true;
        out.answer = std::string(trim(completion.substr(open + 8, close - open - 8)));
    }
    // The whole completion, spaces aside: <think>, text without tags, </think>, <answer>, text
    // without tags, </answer>.
    std::string_view s = trim(completion);
    const auto take = [&](std::string_view tag) {
        s = trim(s);
        if (!s.starts_with(tag)) return false;
        s.remove_prefix(tag.size());
        return true;
    };
    const auto content_until = [&](std::string_view tag) {
        const size_t end = s.find(tag);
        if (end == std::string_view::npos) return false;
        if (s.substr(0, end).find('<') != std::string_view::npos) return false;  // a stray tag
        s.remove_prefix(end);
        return true;
    };
    out.is_formatted = take("<think>") && content_until("</think>") && take("</think>") &&
                       take("<answer>") && content_until("</answer>") && take("</answer>") &&
                       trim(s).empty() && !out.answer.empty();
    return out;
}

Reward Task::reward(const Problem& problem, std::string_view completion,
                    double format_weight) const {
    const ParsedCompletion parsed = parse_completion(completion);
    Reward r;
    r.correct = parsed.has_answer && is_correct(problem, parsed.answer) ? 1.0 : 0.0;
    r.format = parsed.is_formatted ? 1.0 : 0.0;
    r.total = r.correct + format_weight * r.format;
    return r;
}

std::unique_ptr<Task> make_task(std::string_view name) {
    const size_t colon = name.find(':');
    const std::string_view kind = name.substr(0, colon);
    int knob = 0;
    if (colon != std::string_view::npos) {
        const std::string digits(name.substr(colon + 1));
        char* end = nullptr;
        const long v = std::strtol(digits.c_str(), &end, 10);
        if (digits.empty() || *end != '\0' || v < 1 || v > 99)
            throw Error("task ", name, ": '", digits, "' after the colon is not a number (write e.g. ",
                        kind, ":3)");
        knob = int(v);
    }
    if (kind == "addition") return make_arithmetic_task(ArithmeticOp::Add, knob ? knob : 3);
    if (kind == "multiplication") return make_arithmetic_task(ArithmeticOp::Multiply, knob ? knob : 2);
    if (kind == "countdown") return make_countdown_task(knob ? knob : 4);
    throw Error("unknown task '", name, "'; the tasks are addition[:digits], multiplication[:digits] ",
                "and countdown[:numbers]");
}

}  // namespace tandem::rl

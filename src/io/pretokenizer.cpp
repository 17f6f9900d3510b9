// PCRE2 behind Pretokenizer. Match data and the JIT stack are per thread (thread_local), so one
// compiled pattern serves every thread of `tandem prepare` without locks.
#include "io/pretokenizer.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "core/error.h"

namespace tandem::io {

namespace {

std::string pcre2_message(int code) {
    PCRE2_UCHAR text[256];
    pcre2_get_error_message(code, text, sizeof text);
    return reinterpret_cast<const char*>(text);
}

// One set per thread: a match-data block with room for the whole match, and a JIT stack larger
// than PCRE2's 32 KiB default, which long runs of one class could otherwise exhaust.
struct MatchScratch {
    pcre2_match_data* data = pcre2_match_data_create(1, nullptr);
    pcre2_match_context* context = pcre2_match_context_create(nullptr);
    pcre2_jit_stack* stack = pcre2_jit_stack_create(32 * 1024, 1024 * 1024, nullptr);

    MatchScratch() { pcre2_jit_stack_assign(context, nullptr, stack); }
    ~MatchScratch() {
        pcre2_jit_stack_free(stack);
        pcre2_match_context_free(context);
        pcre2_match_data_free(data);
    }
};

MatchScratch& scratch() {
    thread_local MatchScratch s;
    return s;
}

}  // namespace

Pretokenizer::Pretokenizer(std::string pattern) : pattern_(std::move(pattern)) {
    int error = 0;
    PCRE2_SIZE error_at = 0;
    // MATCH_INVALID_UTF: the subject may hold any bytes (decode(encode(x)) == x for every x);
    // invalid sequences simply never match.
    uint32_t options = PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF;
    auto* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern_.data()), pattern_.size(),
                               options, &error, &error_at, nullptr);
    if (!code)
        throw Error("split pattern does not compile at offset ", error_at, ": ",
                    pcre2_message(error), " (pattern: ", pattern_, ")");
    code_ = code;
    has_jit_ = pcre2_jit_compile(code, PCRE2_JIT_COMPLETE) == 0;
}

Pretokenizer::~Pretokenizer() {
    pcre2_code_free(static_cast<pcre2_code*>(code_));
}

Pretokenizer::Pretokenizer(Pretokenizer&& other) noexcept
    : pattern_(std::move(other.pattern_)), code_(other.code_), has_jit_(other.has_jit_) {
    other.code_ = nullptr;
}

Pretokenizer& Pretokenizer::operator=(Pretokenizer&& other) noexcept {
    std::swap(pattern_, other.pattern_);
    std::swap(code_, other.code_);
    std::swap(has_jit_, other.has_jit_);
    return *this;
}

bool Pretokenizer::find(std::string_view text, size_t from, size_t& start, size_t& end) const {
    MatchScratch& s = scratch();
    auto* code = static_cast<pcre2_code*>(code_);
    auto* subject = reinterpret_cast<PCRE2_SPTR>(text.data());
    int rc = has_jit_ ? pcre2_jit_match(code, subject, text.size(), from, 0, s.data, s.context)
                      : pcre2_match(code, subject, text.size(), from, 0, s.data, s.context);
    if (rc == PCRE2_ERROR_NOMATCH) return false;
    if (rc < 0)
        throw Error("split pattern failed at byte ", from, " of a ", text.size(),
                    "-byte text: ", pcre2_message(rc));
    const PCRE2_SIZE* ovector = pcre2_get_ovector_pointer(s.data);
    start = ovector[0];
    end = ovector[1];
    return true;
}

}  // namespace tandem::io

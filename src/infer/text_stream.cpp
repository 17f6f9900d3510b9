// Incremental detokenisation with stop strings. A byte-level tokenizer's text is the
// concatenation of its tokens' bytes (BpeTokenizer::decode adds no spaces and strips nothing,
// special and added tokens included), so each token is decoded alone and appended: the work per
// token is its own bytes plus a held-back tail no longer than the longest stop string.
#include "infer/text_stream.h"

#include <algorithm>
#include <string_view>

#include "core/error.h"

namespace tandem::infer {

namespace {

// How many bytes at the end of `text` begin a UTF-8 sequence that is not complete yet.
size_t incomplete_utf8_tail(std::string_view text) {
    // Look back over at most 3 continuation bytes for a lead byte whose sequence runs past the end.
    for (size_t back = 1; back <= std::min<size_t>(4, text.size()); ++back) {
        const auto byte = static_cast<unsigned char>(text[text.size() - back]);
        if ((byte & 0xC0) == 0x80) continue;  // continuation byte
        const size_t need = byte >= 0xF0 ? 4 : byte >= 0xE0 ? 3 : byte >= 0xC0 ? 2 : 1;
        return need > back ? back : 0;
    }
    return 0;  // only continuation bytes: invalid UTF-8, released as it is
}

// The length of the longest suffix of `text` that is a proper prefix of some stop string: text
// that might still become a stop string and so is not released yet.
size_t stop_prefix_tail(std::string_view text, const std::vector<std::string>& stops) {
    size_t keep = 0;
    for (const auto& stop : stops)
        for (size_t n = std::min(stop.size() - 1, text.size()); n > keep; --n)
            if (text.substr(text.size() - n) == std::string_view(stop).substr(0, n)) {
                keep = n;
                break;
            }
    return keep;
}

}  // namespace

TextStream::TextStream(const io::BpeTokenizer& tokenizer, std::vector<std::string> stop_strings)
    : tokenizer_(tokenizer), stops_(std::move(stop_strings)) {
    for (size_t i = 0; i < stops_.size(); ++i)
        if (stops_[i].empty())
            throw Error("stop string ", i + 1, " of ", stops_.size(),
                        " is empty (a stop string needs at least one character)");
}

TextStream::Update TextStream::push(int32_t token) {
    TANDEM_ASSERT(!stopped_, token);
    pending_ += tokenizer_.decode(std::span<const int32_t>(&token, 1));

    // Every stop string that could have begun in released text was held back instead (its
    // beginning was a stop prefix), so a match lies wholly inside pending_. The earliest wins.
    size_t cut = std::string::npos;
    for (const auto& stop : stops_) cut = std::min(cut, pending_.find(stop));
    Update update;
    if (cut != std::string::npos) {
        update.text = pending_.substr(0, cut);
        text_ += update.text;
        pending_.clear();
        stopped_ = update.stopped = true;
        return update;
    }
    const size_t hold =
        std::max(incomplete_utf8_tail(pending_), stop_prefix_tail(pending_, stops_));
    update.text = pending_.substr(0, pending_.size() - hold);
    text_ += update.text;
    pending_.erase(0, pending_.size() - hold);
    return update;
}

std::string TextStream::finish() {
    std::string rest = std::move(pending_);
    pending_.clear();
    text_ += rest;
    return rest;
}

}  // namespace tandem::infer

// A sequence's sampled tokens turned into text as it becomes final, in time linear in the
// tokens: only whole UTF-8 characters are released, and text that may still turn out to begin a
// stop string is held back until that is decided. A stop string found in the text ends it right
// before the stop string, even when the string spans several tokens.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "io/bpe_tokenizer.h"

namespace tandem::infer {

class TextStream {
public:
    // Throws Error when a stop string is empty. The tokenizer must outlive the stream.
    TextStream(const io::BpeTokenizer& tokenizer, std::vector<std::string> stop_strings);

    struct Update {
        std::string text;      // newly final text (may be empty)
        bool stopped = false;  // a stop string matched: the text is complete, push no more
    };
    // Appends one sampled token (not a stop token: those end a sequence before they reach here).
    Update push(int32_t token);
    // Generation ended for another reason: releases whatever is held back (an unfinished UTF-8
    // character is released as it is; the consumer sees every byte the model produced).
    std::string finish();

    const std::string& text() const { return text_; }  // all final text so far
    bool stopped() const { return stopped_; }

private:
    const io::BpeTokenizer& tokenizer_;
    std::vector<std::string> stops_;
    std::string text_;     // final text, released
    std::string pending_;  // decoded but held back
    bool stopped_ = false;
};

}  // namespace tandem::infer

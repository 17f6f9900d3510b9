// The generation loop and the rules for what text may be streamed yet.
#include "infer/generate.h"

#include <algorithm>

#include "core/error.h"

namespace tandem::infer {

size_t incomplete_utf8_tail(std::string_view text) {
    // Look back over at most 3 continuation bytes for a lead byte whose sequence runs past the end.
    for (size_t back = 1; back <= std::min<size_t>(4, text.size()); ++back) {
        const auto byte = static_cast<unsigned char>(text[text.size() - back]);
        if ((byte & 0xC0) == 0x80) continue;  // continuation byte
        const size_t need = byte >= 0xF0 ? 4 : byte >= 0xE0 ? 3 : byte >= 0xC0 ? 2 : 1;
        return need > back ? back : 0;
    }
    return 0;  // only continuation bytes: invalid UTF-8, stream it as it is
}

namespace {

// The length of the longest suffix of `text` that is a proper prefix of some stop string: text
// that might still become a stop string and so is not shown yet.
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

GenerateResult generate(Decoder& decoder, const io::BpeTokenizer& tokenizer,
                        const GenerateOptions& options,
                        const std::function<void(std::string_view)>& on_text) {
    if (options.max_tokens < 0) throw Error("--max-tokens must be >= 0, got ", options.max_tokens);
    for (const auto& stop : options.stop)
        if (stop.empty()) throw Error("--stop strings must not be empty");
    options.sampling.validate(tokenizer.vocab_size());
    Sampler sampler(options.sampling);
    GenerateResult result;

    // As HF's tokenizer(text): the BOS (or EOS) the model's tokenizer files ask for.
    std::vector<int32_t> prompt = tokenizer.encode_with_special(options.prompt);
    if (prompt.empty()) {
        // Start from the end-of-text token, the boundary every training document follows.
        prompt.push_back(tokenizer.eot_id());
    }
    result.n_prompt_tokens = static_cast<int64_t>(prompt.size());
    if (result.n_prompt_tokens >= decoder.capacity())
        throw Error("the prompt is ", prompt.size(), " tokens but the model's context holds ",
                    decoder.capacity(), " (shorten the prompt)");

    if (options.echo_prompt && on_text) on_text(options.prompt);
    decoder.reset();
    // The end-of-text token, the tokenizer's EOS and generation_config.json's: any ends the text.
    std::vector<int32_t> stop_ids;
    if (options.stop_at_eot) {
        stop_ids = options.stop_ids;
        if (tokenizer.model().eos_id >= 0) stop_ids.push_back(tokenizer.model().eos_id);
        try {
            stop_ids.push_back(tokenizer.eot_id());
        } catch (const Error&) {
        }
    }
    // Prefill in chunks the decoder accepts, then one token at a time.
    const std::vector<float>* logits = nullptr;
    const int64_t V = decoder.weights().config().vocab_size;
    for (size_t at = 0; at < prompt.size();) {
        const int64_t n = std::min<int64_t>(decoder.max_chunk(), prompt.size() - at);
        logits = &decoder.feed(std::span(prompt).subspan(at, n), 1, n);
        at += n;
    }

    std::string text;     // all generated text
    size_t streamed = 0;  // bytes of text already handed to on_text
    result.finish_reason = "length";
    std::vector<int32_t> generated;
    for (int64_t i = 0; i < options.max_tokens; ++i) {
        // Token ids past the tokenizer's vocabulary (a padded model) are never sampled.
        const std::span<const float> row(logits->data(), std::min<int64_t>(V, tokenizer.vocab_size()));
        const int32_t next =
            sampler.sample(row, {0, decoder.position()}, {prompt, generated}).id;
        if (std::find(stop_ids.begin(), stop_ids.end(), next) != stop_ids.end()) {
            result.finish_reason = "eot";
            break;
        }
        generated.push_back(next);
        ++result.n_tokens;
        text = tokenizer.decode(generated);
        // A stop string ends the text right before it.
        size_t cut = std::string::npos;
        for (const auto& stop : options.stop) {
            const size_t found = text.find(stop, streamed > stop.size() ? streamed - stop.size() : 0);
            if (found != std::string::npos) cut = std::min(cut, found);
        }
        if (cut != std::string::npos) {
            text.resize(cut);
            result.finish_reason = "stop";
            break;
        }
        const size_t hold = std::max(incomplete_utf8_tail(text), stop_prefix_tail(text, options.stop));
        if (on_text && text.size() - hold > streamed) {
            on_text(std::string_view(text).substr(streamed, text.size() - hold - streamed));
            streamed = text.size() - hold;
        }
        if (decoder.position() >= decoder.capacity()) {
            result.finish_reason = "context";
            break;
        }
        logits = &decoder.feed(std::span(&generated.back(), 1), 1, 1);
    }
    if (on_text && text.size() > streamed) on_text(std::string_view(text).substr(streamed));
    result.text = std::move(text);
    return result;
}

}  // namespace tandem::infer

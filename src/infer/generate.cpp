// The generation loop: prefill, then sample and feed one token at a time; what text may be
// streamed yet is TextStream's decision.
#include "infer/generate.h"

#include <algorithm>

#include "core/error.h"
#include "infer/text_stream.h"

namespace tandem::infer {

GenerateResult generate(Decoder& decoder, const io::BpeTokenizer& tokenizer,
                        const GenerateOptions& options,
                        const std::function<void(std::string_view)>& on_text) {
    if (options.max_tokens < 0) throw Error("--max-tokens must be >= 0, got ", options.max_tokens);
    TextStream stream(tokenizer, options.stop);  // throws on an empty stop string
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

    const auto emit = [&](const std::string& text) {
        if (on_text && !text.empty()) on_text(text);
    };
    result.finish_reason = "length";
    std::vector<int32_t> generated;
    for (int64_t i = 0; i < options.max_tokens; ++i) {
        // Token ids past the tokenizer's vocabulary (a padded model) are never sampled.
        const std::span<const float> row(logits->data(),
                                         std::min<int64_t>(V, tokenizer.vocab_size()));
        const int32_t next = sampler.sample(row, {0, decoder.position()}, {prompt, generated}).id;
        if (std::find(stop_ids.begin(), stop_ids.end(), next) != stop_ids.end()) {
            result.finish_reason = "eot";
            break;
        }
        generated.push_back(next);
        ++result.n_tokens;
        const TextStream::Update update = stream.push(next);  // a stop string ends the text
        emit(update.text);
        if (update.stopped) {
            result.finish_reason = "stop";
            break;
        }
        if (decoder.position() >= decoder.capacity()) {
            result.finish_reason = "context";
            break;
        }
        logits = &decoder.feed(std::span(&generated.back(), 1), 1, 1);
    }
    emit(stream.finish());
    result.text = stream.text();
    return result;
}

}  // namespace tandem::infer

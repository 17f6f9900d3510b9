// Prompts to engine requests and engine events back to text, for one prompt or a batch.
#include "infer/generate.h"

#include <unordered_map>

#include "core/error.h"

namespace tandem::infer {

std::vector<int32_t> encode_prompt(const io::BpeTokenizer& tokenizer, std::string_view prompt) {
    std::vector<int32_t> ids = tokenizer.encode_with_special(prompt);
    if (ids.empty()) ids.push_back(tokenizer.eot_id());
    return ids;
}

Request make_request(const io::BpeTokenizer& tokenizer, const GenerateOptions& options,
                     std::vector<int32_t> prompt) {
    Request r;
    r.prompt = std::move(prompt);
    r.sampling = options.sampling;
    r.max_tokens = options.max_tokens;
    r.stop = options.stop;
    r.n = options.n;
    // The end-of-text token, the tokenizer's EOS and generation_config.json's: any ends the text.
    if (options.stop_at_eot) {
        r.stop_ids = options.stop_ids;
        if (tokenizer.model().eos_id >= 0) r.stop_ids.push_back(tokenizer.model().eos_id);
        try {
            r.stop_ids.push_back(tokenizer.eot_id());
        } catch (const Error&) {  // a tokenizer without one: the others still stop
        }
    }
    return r;
}

namespace {

void add_event(GenerateResult& result, const SequenceEvent& e) {
    result.n_tokens += static_cast<int64_t>(e.tokens.size());
    result.text += e.text;
    if (e.finish != FinishReason::None) result.finish_reason = finish_reason_name(e.finish);
}

}  // namespace

GenerateResult generate(Engine& engine, const io::BpeTokenizer& tokenizer,
                        const GenerateOptions& options,
                        const std::function<void(std::string_view)>& on_text) {
    TANDEM_ASSERT(options.n == 1 && !engine.has_work(), options.n);
    GenerateResult result;
    std::vector<int32_t> prompt = encode_prompt(tokenizer, options.prompt);
    result.n_prompt_tokens = static_cast<int64_t>(prompt.size());
    engine.submit(make_request(tokenizer, options, std::move(prompt)));
    if (options.echo_prompt && on_text) on_text(options.prompt);
    engine.run([&](const SequenceEvent& e) {
        add_event(result, e);
        if (on_text && !e.text.empty()) on_text(e.text);
    });
    return result;
}

std::vector<std::vector<GenerateResult>> generate_batch(
    Engine& engine, const io::BpeTokenizer& tokenizer, std::span<const std::string> prompts,
    const GenerateOptions& options, const std::function<void(const BatchProgress&)>& on_progress) {
    std::vector<Request> requests;
    std::vector<std::vector<GenerateResult>> results(prompts.size());
    for (size_t i = 0; i < prompts.size(); ++i) {
        requests.push_back(make_request(tokenizer, options, encode_prompt(tokenizer, prompts[i])));
        results[i].resize(options.n);
        for (GenerateResult& r : results[i])
            r.n_prompt_tokens = static_cast<int64_t>(requests.back().prompt.size());
    }
    // Every request is checked before any is queued: a bad prompt stops the batch before it runs.
    std::unordered_map<RequestId, size_t> prompt_of;
    for (size_t i = 0; i < requests.size(); ++i) {
        try {
            prompt_of[engine.submit(std::move(requests[i]))] = i;
        } catch (const Error& e) {
            for (const auto& [id, at] : prompt_of) engine.cancel(id);
            engine.run();  // takes the cancellations in
            throw Error("prompt ", i + 1, ": ", e.what());
        }
    }
    BatchProgress progress{.n_total = static_cast<int64_t>(prompts.size()) * options.n};
    while (engine.has_work()) {
        for (const SequenceEvent& e : engine.step()) {
            auto it = prompt_of.find(e.request);
            if (it == prompt_of.end()) continue;  // someone else's request
            add_event(results[it->second][e.sequence], e);
            progress.n_tokens += static_cast<int64_t>(e.tokens.size());
            progress.n_done += e.finish != FinishReason::None;
        }
        if (on_progress) on_progress(progress);
    }
    return results;
}

}  // namespace tandem::infer

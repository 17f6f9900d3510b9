// A request's prompts go to the engine as one engine request each (n sequences apiece), so that
// choice prompt * n + sample is sequence `sample` of request `prompt`. Streams are read one
// prompt after the other: later prompts' events wait in their queues meanwhile.
#include "serve/generation_job.h"

#include <algorithm>
#include <span>

#include "core/error.h"

namespace tandem::serve {

namespace {

// ignore_eos as llama.cpp's server means it: the end tokens are never sampled (a bias of -100,
// the API's ban), so every sequence runs to its max_tokens.
void ban_tokens(std::vector<std::pair<int32_t, float>>& bias, std::span<const int32_t> ids) {
    for (int32_t id : ids) {
        auto it = std::find_if(bias.begin(), bias.end(), [&](const auto& b) { return b.first == id; });
        if (it == bias.end())
            bias.emplace_back(id, -100.0f);
        else
            it->second = -100.0f;
    }
}

FinishReason api_finish(infer::FinishReason reason) {
    // The context's end and a cancellation (shutdown) cut the text short, as max_tokens does.
    return reason == infer::FinishReason::Stop ? FinishReason::Stop : FinishReason::Length;
}

}  // namespace

GenerationJob::GenerationJob(const CompletionRequest& request, ServedModel& model, EngineLoop& loop,
                             ResponseMeta meta, uint64_t seed)
    : model_(model),
      loop_(loop),
      meta_(std::move(meta)),
      options_(request.options),
      is_chat_(false) {
    std::vector<std::vector<int32_t>> prompts;
    for (const Prompt& p : request.prompts)
        prompts.push_back(p.is_tokens ? p.tokens : model.encode_completion_prompt(p.text));
    submit(std::move(prompts), model.completion_stop_ids(), "prompt", seed);
}

GenerationJob::GenerationJob(const ChatRequest& request, ServedModel& model, EngineLoop& loop,
                             ResponseMeta meta, uint64_t seed)
    : model_(model),
      loop_(loop),
      meta_(std::move(meta)),
      options_(request.options),
      is_chat_(true) {
    if (!model.chat_template())
        throw invalid_request("messages", "The model '", model.name(),
                              "' has no chat template (its tokenizer_config.json has no "
                              "chat_template): use /v1/completions, or start tandem serve with "
                              "--chat-template FILE");
    std::vector<std::vector<int32_t>> prompts;
    prompts.push_back(model.encode_chat(request.messages, request.enable_thinking));
    submit(std::move(prompts), model.chat_stop_ids(), "messages", seed);
}

GenerationJob::~GenerationJob() {
    cancel();
}

void GenerationJob::submit(std::vector<std::vector<int32_t>> prompts, std::vector<int32_t> stop_ids,
                           const std::string& prompt_param, uint64_t seed) {
    // Every prompt is checked before any is queued: a bad one refuses the request whole.
    std::vector<int64_t> max_tokens;
    for (const auto& p : prompts) {
        max_tokens.push_back(fit_to_context(
            int64_t(p.size()), options_, model_.n_ctx(),
            prompts.size() > 1 ? prompt_param + "[" + std::to_string(max_tokens.size()) + "]"
                               : prompt_param));
        n_prompt_tokens_ += int64_t(p.size());
    }
    choices_.resize(prompts.size() * size_t(options_.n));
    for (size_t i = 0; i < prompts.size(); ++i) {
        infer::Request r;
        r.prompt = std::move(prompts[i]);
        r.sampling = options_.sampling;
        if (!options_.has_seed) r.sampling.seed = seed;
        r.max_tokens = max_tokens[i];
        r.stop_ids = stop_ids;
        if (options_.ignore_eos) ban_tokens(r.sampling.logit_bias, stop_ids);
        r.stop = options_.stop;
        r.n = options_.n;
        // A refusal of a later prompt cancels the earlier ones: the constructor throws, so the
        // destructor would not.
        try {
            streams_.push_back(loop_.submit(std::move(r)));
        } catch (const ApiError&) {
            cancel();
            throw;
        } catch (const Error& e) {  // the engine refused it: a request out of its range
            cancel();
            throw invalid_request(prompt_param, e.what());
        }
    }
}

void GenerationJob::cancel() {
    for (const auto& s : streams_) loop_.cancel(*s);
}

void GenerationJob::watch_client(std::function<bool()> is_gone) {
    is_client_gone_ = std::move(is_gone);
    next_client_check_ = std::chrono::steady_clock::now() + kClientCheck;
}

bool GenerationJob::wait_events(RequestStream& stream, std::vector<infer::SequenceEvent>& events) {
    for (;;) {
        if (!is_client_gone_ || client_left_) return stream.wait(events);
        const auto now = std::chrono::steady_clock::now();
        // Checked by the clock, not on timeouts alone: a request whose tokens come every step
        // never waits a whole slice.
        if (now >= next_client_check_) {
            next_client_check_ = now + kClientCheck;
            if (is_client_gone_()) {
                client_left_ = true;
                cancel();  // the stream still ends: its sequences finish at the next step
                continue;
            }
        }
        const auto slice =
            std::chrono::ceil<std::chrono::milliseconds>(next_client_check_ - now);
        switch (stream.wait_for(events, slice)) {
            case RequestStream::Wait::Events:
                return true;
            case RequestStream::Wait::Ended:
                return false;
            case RequestStream::Wait::TimedOut:
                break;
        }
    }
}

void GenerationJob::throw_if_failed(const RequestStream& stream) const {
    const std::string failure = stream.failure();
    if (!failure.empty()) throw server_error("The engine failed while generating: " + failure);
}

std::vector<TokenLogprobs> GenerationJob::logprobs_of(const infer::SequenceEvent& e) const {
    std::vector<TokenLogprobs> out;
    const io::BpeTokenizer& tok = model_.tokenizer();
    for (const infer::SampledToken& t : e.tokens) {
        TokenLogprobs lp{.token = tok.decode(std::span(&t.id, 1)), .logprob = t.logprob, .top = {}};
        for (const infer::TokenLogprob& top : t.top)
            lp.top.emplace_back(tok.decode(std::span(&top.id, 1)), top.logprob);
        out.push_back(std::move(lp));
    }
    return out;
}

std::string GenerationJob::run_whole() {
    std::vector<infer::SequenceEvent> events;
    for (size_t p = 0; p < streams_.size(); ++p) {
        while (wait_events(*streams_[p], events)) {
            for (const infer::SequenceEvent& e : events) {
                ChoiceState& c = choices_[p * size_t(options_.n) + size_t(e.sequence)];
                c.text += e.text;
                n_generated_ += int64_t(e.tokens.size());
                if (options_.sampling.logprobs)
                    for (TokenLogprobs& lp : logprobs_of(e)) c.logprobs.push_back(std::move(lp));
                if (e.finish != infer::FinishReason::None) c.finish = api_finish(e.finish);
            }
            events.clear();
        }
        throw_if_failed(*streams_[p]);
    }
    std::vector<Choice> choices;
    for (size_t i = 0; i < choices_.size(); ++i) {
        ChoiceState& c = choices_[i];
        Choice out{.index = int64_t(i),
                   .text = std::move(c.text),
                   .finish_reason = c.finish.value_or(FinishReason::Length),
                   .logprobs = {}};
        if (options_.sampling.logprobs) out.logprobs = std::move(c.logprobs);
        choices.push_back(std::move(out));
    }
    const Usage usage{.prompt_tokens = n_prompt_tokens_, .completion_tokens = n_generated_};
    return is_chat_ ? chat_completion_json(meta_, choices, usage)
                    : completion_json(meta_, choices, usage);
}

bool GenerationJob::next_events(std::string& out) {
    if (ended_) return false;
    std::vector<infer::SequenceEvent> events;
    while (current_ < streams_.size() && !wait_events(*streams_[current_], events)) {
        const std::string failure = streams_[current_]->failure();
        if (!failure.empty()) {
            out += error_event(server_error("The engine failed while generating: " + failure));
            out += done_event();
            ended_ = true;
            return false;
        }
        ++current_;
    }
    if (current_ == streams_.size()) {
        const Usage usage{.prompt_tokens = n_prompt_tokens_, .completion_tokens = n_generated_};
        if (options_.include_usage)
            out += is_chat_ ? chat_usage_event(meta_, usage) : completion_usage_event(meta_, usage);
        out += done_event();
        ended_ = true;
        return false;
    }
    for (const infer::SequenceEvent& e : events) {
        const size_t index = current_ * size_t(options_.n) + size_t(e.sequence);
        ChoiceState& c = choices_[index];
        n_generated_ += int64_t(e.tokens.size());
        ChoiceDelta d{.index = int64_t(index),
                      .text = e.text,
                      .finish_reason = {},
                      .logprobs = {},
                      .with_role = is_chat_ && !c.sent_role};
        if (e.finish != infer::FinishReason::None) d.finish_reason = api_finish(e.finish);
        if (options_.sampling.logprobs && !e.tokens.empty()) d.logprobs = logprobs_of(e);
        // A step whose text is held back (a possible stop string) says nothing yet.
        if (d.text.empty() && !d.finish_reason && !d.logprobs && !d.with_role) continue;
        c.sent_role = true;
        out += is_chat_ ? chat_chunk_event(meta_, d, options_.include_usage)
                        : completion_chunk_event(meta_, d, options_.include_usage);
    }
    return true;
}

}  // namespace tandem::serve

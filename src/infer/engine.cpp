// Requests in, events out: the inbox other threads fill, request checks, and what happens to a
// sequence after each step (sampling, stop ids, stop strings, limits, the context's end).
#include "infer/engine.h"

#include <algorithm>

#include "core/error.h"

namespace tandem::infer {

const char* finish_reason_name(FinishReason reason) {
    switch (reason) {
        case FinishReason::None: return "";
        case FinishReason::Stop: return "stop";
        case FinishReason::Length: return "length";
        case FinishReason::Context: return "context";
        case FinishReason::Cancelled: return "cancelled";
    }
    return "";
}

struct Engine::Sequence {
    RequestId request;
    int64_t index;     // 0 .. n-1
    int64_t n_prompt;  // the first n_prompt of the scheduler's tokens are the prompt
    int64_t max_tokens;
    std::vector<int32_t> stop_ids;
    Sampler sampler;
    TextStream text;
    int64_t n_generated = 0;
};

namespace {

SequenceEvent event_of(RequestId request, int64_t sequence) {
    SequenceEvent event;
    event.request = request;
    event.sequence = sequence;
    return event;
}

SchedulerOptions scheduler_options(const StepModel& model, const EngineOptions& o) {
    const int64_t model_max = model.max_tokens_per_step();
    if (o.max_tokens_per_step < 0 || o.max_tokens_per_step > model_max)
        throw Error("engine: max_tokens_per_step is ", o.max_tokens_per_step,
                    " but the model runs at most ", model_max,
                    " per step (0 takes the model's)");
    return {.max_seqs = o.max_seqs,
            .max_tokens_per_step = o.max_tokens_per_step == 0 ? model_max : o.max_tokens_per_step,
            .prefill_chunk = o.prefill_chunk,
            .prefix_cache = o.prefix_cache};
}

}  // namespace

Engine::Engine(StepModel& model, const io::BpeTokenizer& tokenizer, EngineOptions options)
    : model_(model),
      tokenizer_(tokenizer),
      model_vocab_(model.vocab_size()),
      max_positions_(model.max_positions()),
      pages_(model.pages()),
      // Ids past the tokenizer's vocabulary (a model padded to a round size) are never sampled.
      vocab_(std::min<int64_t>(model.vocab_size(), tokenizer.vocab_size())),
      scheduler_(scheduler_options(model, options), model.pages(), model.max_positions()) {}

Engine::~Engine() = default;

RequestId Engine::submit(Request r) {
    if (r.prompt.empty()) throw Error("request: prompt is empty (give at least one token)");
    if (static_cast<int64_t>(r.prompt.size()) >= max_positions_)
        throw Error("request: prompt is ", r.prompt.size(), " tokens but the model's context holds ",
                    max_positions_, " (shorten the prompt)");
    for (size_t i = 0; i < r.prompt.size(); ++i)
        if (r.prompt[i] < 0 || r.prompt[i] >= model_vocab_)
            throw Error("request: prompt token ", i, " is id ", r.prompt[i],
                        " but the model's vocabulary has ", model_vocab_, " ids");
    if (r.n < 1) throw Error("request: n is ", r.n, " but must be >= 1 (sequences to sample)");
    if (r.max_tokens < 0) throw Error("request: max_tokens is ", r.max_tokens, " but must be >= 0");
    for (size_t i = 0; i < r.stop.size(); ++i)
        if (r.stop[i].empty()) throw Error("request: stop string ", i, " is empty");
    r.sampling.validate(vocab_);
    // The positions its longest sequence keeps in the cache: the last token is sampled, not run.
    const int64_t max_cached =
        std::min<int64_t>(r.prompt.size() + std::max<int64_t>(r.max_tokens, 1) - 1, max_positions_);
    const int64_t pages = (max_cached + pages_.page_size - 1) / pages_.page_size;
    if (pages > pages_.n_pages)
        throw Error("request: prompt of ", r.prompt.size(), " tokens and max_tokens ", r.max_tokens,
                    " need ", pages, " KV pages of ", pages_.page_size,
                    " positions but the whole cache holds ", pages_.n_pages,
                    " (lower max_tokens or give the cache more pages)");
    std::lock_guard lock(inbox_mutex_);
    const RequestId id = next_request_++;
    inbox_.emplace_back(id, std::move(r));
    ++n_live_;
    return id;
}

void Engine::cancel(RequestId id) {
    std::lock_guard lock(inbox_mutex_);
    cancels_.push_back(id);
}

bool Engine::has_work() const {
    std::lock_guard lock(inbox_mutex_);
    return n_live_ > 0;
}

void Engine::take_inbox(std::vector<SequenceEvent>& events) {
    std::vector<std::pair<RequestId, Request>> inbox;
    std::vector<RequestId> cancels;
    {
        std::lock_guard lock(inbox_mutex_);
        inbox.swap(inbox_);
        cancels.swap(cancels_);
    }
    // Submissions first, so that a request cancelled before its first step is cancelled too.
    for (auto& [id, request] : inbox) start(id, std::move(request), events);
    for (const RequestId id : cancels) {
        auto it = requests_.find(id);
        if (it == requests_.end()) continue;
        for (const SeqId seq : std::vector<SeqId>(it->second)) {
            events.push_back(event_of(id, seqs_.at(seq)->index));
            finish(seq, FinishReason::Cancelled, events.back());
        }
    }
}

void Engine::start(RequestId id, Request r, std::vector<SequenceEvent>& events) {
    const int64_t max_cached =
        std::min<int64_t>(r.prompt.size() + std::max<int64_t>(r.max_tokens, 1) - 1, max_positions_);
    std::vector<SeqId>& mine = requests_[id];
    for (int64_t i = 0; i < r.n; ++i) {
        const SeqId seq = next_seq_++;
        seqs_.emplace(seq, std::make_unique<Sequence>(Sequence{
                               .request = id,
                               .index = i,
                               .n_prompt = static_cast<int64_t>(r.prompt.size()),
                               .max_tokens = r.max_tokens,
                               .stop_ids = r.stop_ids,
                               .sampler = Sampler(r.sampling),
                               .text = TextStream(tokenizer_, r.stop),
                           }));
        mine.push_back(seq);
        scheduler_.add(seq, r.prompt, max_cached);
    }
    if (r.max_tokens == 0)
        for (const SeqId seq : std::vector<SeqId>(mine)) {
            events.push_back(event_of(id, seqs_.at(seq)->index));
            finish(seq, FinishReason::Length, events.back());
        }
}

void Engine::finish(SeqId seq, FinishReason reason, SequenceEvent& event) {
    Sequence& s = *seqs_.at(seq);
    // Text held back (an unfinished character, a possible stop string's start) is final now,
    // unless a stop string ended the text.
    if (!s.text.stopped()) event.text += s.text.finish();
    event.finish = reason;
    scheduler_.remove(seq);
    std::vector<SeqId>& mine = requests_.at(s.request);
    mine.erase(std::find(mine.begin(), mine.end(), seq));
    if (mine.empty()) {
        requests_.erase(s.request);
        std::lock_guard lock(inbox_mutex_);
        --n_live_;
    }
    seqs_.erase(seq);
}

void Engine::sample(SeqId seq, std::span<const float> logits, std::vector<SequenceEvent>& events) {
    Sequence& s = *seqs_.at(seq);
    const std::span<const int32_t> tokens = scheduler_.tokens(seq);
    const int64_t position = static_cast<int64_t>(tokens.size());  // of the token chosen now
    const SampledToken t = s.sampler.sample(
        logits, {.sequence = static_cast<uint64_t>(s.index), .position = position},
        {.prompt = tokens.first(s.n_prompt), .generated = tokens.subspan(s.n_prompt)});
    ++stats_.n_generated;
    events.push_back(event_of(s.request, s.index));
    SequenceEvent& event = events.back();
    if (std::find(s.stop_ids.begin(), s.stop_ids.end(), t.id) != s.stop_ids.end())
        return finish(seq, FinishReason::Stop, event);
    ++s.n_generated;
    event.tokens.push_back(t);
    const TextStream::Update update = s.text.push(t.id);
    event.text = update.text;
    if (update.stopped) return finish(seq, FinishReason::Stop, event);
    if (s.n_generated >= s.max_tokens) return finish(seq, FinishReason::Length, event);
    // The new token sits at `position`; running it needs a position inside the context.
    if (position >= max_positions_) return finish(seq, FinishReason::Context, event);
    scheduler_.append(seq, t.id);
}

std::vector<SequenceEvent> Engine::step() {
    std::vector<SequenceEvent> events;
    take_inbox(events);
    if (scheduler_.empty()) return events;
    const StepPlan plan = scheduler_.schedule();
    // Every sequence fits the pool alone, so a scheduler with sequences always runs one.
    TANDEM_ASSERT(!plan.empty(), scheduler_.n_running(), scheduler_.n_waiting());
    std::span<const float> logits;
    try {
        logits = model_.run(plan.batch);
    } catch (...) {
        // The pages this step was to complete are published but hold whatever it left there.
        scheduler_.forget_prefix_cache();
        throw;
    }
    TANDEM_ASSERT(logits.size() == plan.sampling.size() * model_vocab_, logits.size());
    ++stats_.n_steps;
    stats_.n_rows += plan.batch.size();
    stats_.n_preemptions += static_cast<int64_t>(plan.preempted.size());
    stats_.n_prefix_hits = scheduler_.n_prefix_hits();
    for (size_t i = 0; i < plan.sampling.size(); ++i)
        sample(plan.sampling[i], logits.subspan(i * model_vocab_, vocab_), events);
    return events;
}

void Engine::run(const std::function<void(const SequenceEvent&)>& on_event) {
    while (has_work())
        for (const SequenceEvent& e : step())
            if (on_event) on_event(e);
}

std::vector<std::vector<Completion>> Engine::run_to_completion(std::vector<Request> requests) {
    std::vector<std::vector<Completion>> out(requests.size());
    std::unordered_map<RequestId, size_t> index;
    for (size_t i = 0; i < requests.size(); ++i) {
        out[i].resize(requests[i].n);
        try {
            index[submit(std::move(requests[i]))] = i;
        } catch (const Error&) {
            for (const auto& [id, at] : index) cancel(id);  // none of them runs
            throw;
        }
    }
    run([&](const SequenceEvent& e) {
        auto it = index.find(e.request);
        if (it == index.end()) return;  // someone else's request
        Completion& c = out[it->second][e.sequence];
        c.tokens.insert(c.tokens.end(), e.tokens.begin(), e.tokens.end());
        c.text += e.text;
        if (e.finish != FinishReason::None) c.finish = e.finish;
    });
    return out;
}

}  // namespace tandem::infer

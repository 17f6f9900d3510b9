// The engine thread: steps while any request is live, sleeps on a condition variable otherwise,
// and routes every event to its request's stream under the loop's lock, so that a request
// submitted (and registered under that lock) never loses an event to a step that ran before its
// stream was known.
#include "serve/engine_loop.h"

#include <algorithm>

#include "serve/api_error.h"

namespace tandem::serve {

bool RequestStream::wait(std::vector<infer::SequenceEvent>& out) {
    std::unique_lock lock(mutex_);
    ready_.wait(lock, [&] { return has_news(); });
    return take(out);
}

RequestStream::Wait RequestStream::wait_for(std::vector<infer::SequenceEvent>& out,
                                            std::chrono::milliseconds timeout) {
    std::unique_lock lock(mutex_);
    if (!ready_.wait_for(lock, timeout, [&] { return has_news(); })) return Wait::TimedOut;
    return take(out) ? Wait::Events : Wait::Ended;
}

bool RequestStream::take(std::vector<infer::SequenceEvent>& out) {
    if (events_.empty()) return false;
    for (infer::SequenceEvent& e : events_) out.push_back(std::move(e));
    events_.clear();
    return true;
}

std::string RequestStream::failure() const {
    std::lock_guard lock(mutex_);
    return failure_;
}

EngineLoop::EngineLoop(infer::Engine& engine, ServerMetrics& metrics, int64_t max_sequences,
                       int64_t n_kv_pages)
    : engine_(engine), metrics_(metrics), max_sequences_(max_sequences) {
    metrics_.kv_pages_total.set(double(n_kv_pages));
    update_gauges();
    thread_ = std::thread([this] { run(); });
}

EngineLoop::~EngineLoop() {
    stop();
}

std::shared_ptr<RequestStream> EngineLoop::submit(infer::Request request) {
    auto stream = std::make_shared<RequestStream>();
    stream->n_sequences_ = request.n;
    stream->n_unfinished_ = request.n;
    stream->last_token_.resize(size_t(request.n));
    stream->submitted_ = RequestStream::Clock::now();
    const auto n_prompt = int64_t(request.prompt.size());
    {
        std::lock_guard lock(mutex_);
        if (stopping_)
            throw ApiError(503, "server_error", "", "shutting_down",
                           "The server is shutting down and takes no new requests");
        // One request alone may always run, however large its n: the bound is on crowds.
        if (n_sequences_ > 0 && n_sequences_ + request.n > max_sequences_) throw queue_full(1);
        stream->id_ = engine_.submit(std::move(request));  // throws Error for a bad request
        n_sequences_ += stream->n_sequences_;
        streams_[stream->id_] = stream;
        // Now, not after the next step: a scrape right after a burst sees the burst.
        metrics_.queue_depth.set(double(std::max<int64_t>(0, n_sequences_ - n_running_)));
    }
    metrics_.prompt_tokens.add(uint64_t(n_prompt));
    wake_.notify_one();
    return stream;
}

void EngineLoop::cancel(const RequestStream& stream) {
    engine_.cancel(stream.id());
}

void EngineLoop::cancel_all() {
    std::lock_guard lock(mutex_);
    for (const auto& [id, stream] : streams_) engine_.cancel(id);
}

void EngineLoop::stop() {
    {
        std::lock_guard lock(mutex_);
        if (!thread_.joinable()) return;
        stopping_ = true;
        for (const auto& [id, stream] : streams_) engine_.cancel(id);
    }
    wake_.notify_one();
    thread_.join();
}

int64_t EngineLoop::n_sequences() const {
    std::lock_guard lock(mutex_);
    return n_sequences_;
}

void EngineLoop::run() {
    for (;;) {
        {
            std::unique_lock lock(mutex_);
            wake_.wait(lock, [&] { return stopping_ || engine_.has_work(); });
            if (stopping_ && !engine_.has_work()) return;
        }
        std::vector<infer::SequenceEvent> events;
        try {
            events = engine_.step();
        } catch (const std::exception& e) {
            fail_all(e.what());
            // Cancelled requests still count as work until a step takes them in: do not spin.
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
            continue;
        }
        route(events);
        update_gauges();
    }
}

void EngineLoop::route(std::vector<infer::SequenceEvent>& events) {
    const auto now = RequestStream::Clock::now();
    std::lock_guard lock(mutex_);
    for (infer::SequenceEvent& e : events) {
        auto it = streams_.find(e.request);
        if (it == streams_.end()) continue;  // a request failed earlier and was dropped
        RequestStream& s = *it->second;
        metrics_.generated_tokens.add(e.tokens.size());
        if (!e.tokens.empty()) {
            auto& last = s.last_token_[size_t(e.sequence)];
            const bool first = last == RequestStream::Clock::time_point{};
            // A step that yields several tokens of one sequence (it cannot today) shares the gap.
            if (first)
                metrics_.time_to_first_token.observe(
                    std::chrono::duration<double>(now - s.submitted_).count());
            else
                for (size_t i = 0; i < e.tokens.size(); ++i)
                    metrics_.time_per_output_token.observe(
                        std::chrono::duration<double>(now - last).count() /
                        double(e.tokens.size()));
            last = now;
        }
        const bool finished = e.finish != infer::FinishReason::None;
        {
            std::lock_guard stream_lock(s.mutex_);
            s.events_.push_back(std::move(e));
            if (finished) --s.n_unfinished_;
        }
        s.ready_.notify_all();
        if (finished) {
            --n_sequences_;
            if (s.n_unfinished_ == 0) streams_.erase(it);
        }
    }
}

// The engine threw mid-step: its state is unknown, so every request ends with the reason and is
// cancelled, which returns its pages if the engine can still do so.
void EngineLoop::fail_all(const std::string& why) {
    std::lock_guard lock(mutex_);
    for (auto& [id, stream] : streams_) {
        engine_.cancel(id);
        {
            std::lock_guard stream_lock(stream->mutex_);
            stream->failure_ = why;
            n_sequences_ -= stream->n_unfinished_;
            stream->n_unfinished_ = 0;
        }
        stream->ready_.notify_all();
    }
    streams_.clear();
}

void EngineLoop::update_gauges() {
    const infer::Scheduler& s = engine_.scheduler();
    metrics_.running_sequences.set(double(s.n_running()));
    metrics_.kv_pages_in_use.set(double(s.pool().n_pages() - s.pool().n_free()));
    metrics_.kv_pages_cached.set(double(s.pool().n_idle_published()));
    const int64_t hits = engine_.stats().n_prefix_hits;
    metrics_.prompt_tokens_cached.add(uint64_t(hits - prefix_hits_seen_));
    prefix_hits_seen_ = hits;
    std::lock_guard lock(mutex_);
    n_running_ = s.n_running();
    metrics_.queue_depth.set(double(std::max<int64_t>(0, n_sequences_ - n_running_)));
}

}  // namespace tandem::serve

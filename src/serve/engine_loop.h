// The bridge between HTTP handler threads and the engine: one thread owns Engine::step() and
// hands each step's events to the RequestStream of the request they belong to; handlers submit,
// wait on their own stream and cancel. It also bounds how many sequences the server holds (429
// beyond it) and keeps the engine's gauges and latency histograms of ServerMetrics current.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "infer/engine.h"
#include "serve/metrics.h"

namespace tandem::serve {

// One request's events, in the order the engine produced them.
class RequestStream {
   public:
    // Blocks until events arrive or the request is over; moves them into `out` (appended).
    // Returns false once every sequence has finished and every event has been taken.
    bool wait(std::vector<infer::SequenceEvent>& out);
    // As wait(), giving up after `timeout` with nothing moved: a waiter that must look at
    // something else now and then (its client's connection) waits in slices.
    enum class Wait { Events, Ended, TimedOut };
    Wait wait_for(std::vector<infer::SequenceEvent>& out, std::chrono::milliseconds timeout);
    // Set when the engine failed while running the request: its sequences end without a finish
    // reason and this says why.
    std::string failure() const;
    infer::RequestId id() const { return id_; }

   private:
    friend class EngineLoop;
    using Clock = std::chrono::steady_clock;
    // Under mutex_: events wait, or every sequence has finished.
    bool has_news() const { return !events_.empty() || n_unfinished_ == 0; }
    // Under mutex_: moves the waiting events into `out`; false when none waited (the end).
    bool take(std::vector<infer::SequenceEvent>& out);

    infer::RequestId id_ = 0;
    Clock::time_point submitted_;
    std::vector<Clock::time_point> last_token_;  // per sequence; epoch before its first token
    int64_t n_sequences_ = 0;

    mutable std::mutex mutex_;
    std::condition_variable ready_;
    std::deque<infer::SequenceEvent> events_;
    int64_t n_unfinished_ = 0;
    std::string failure_;
};

class EngineLoop {
   public:
    // `max_sequences`: sequences (running and waiting) the server holds at most; a request that
    // would go past it is refused with 429. The engine and metrics must outlive the loop.
    EngineLoop(infer::Engine& engine, ServerMetrics& metrics, int64_t max_sequences,
               int64_t n_kv_pages);
    ~EngineLoop();  // stop()

    // Thread-safe. Queues the request: throws ApiError 429 when the server is full, 503 after
    // stop(), and the engine's Error for a request it refuses.
    std::shared_ptr<RequestStream> submit(infer::Request request);
    // Thread-safe. The request's sequences end "cancelled" at the next step and their pages go
    // back to the pool; the stream still ends as usual.
    void cancel(const RequestStream& stream);
    void cancel_all();
    // Cancels what runs, runs the engine until it is idle and joins the thread.
    void stop();

    // Sequences admitted and not finished (thread-safe).
    int64_t n_sequences() const;

   private:
    void run();
    void route(std::vector<infer::SequenceEvent>& events);
    void fail_all(const std::string& why);
    void update_gauges();

    infer::Engine& engine_;
    ServerMetrics& metrics_;
    int64_t max_sequences_;
    int64_t prefix_hits_seen_ = 0;  // the engine's count already added to the metric (loop thread)

    mutable std::mutex mutex_;  // guards streams_, n_sequences_, stopping_ and the wake-ups
    std::condition_variable wake_;
    std::unordered_map<infer::RequestId, std::shared_ptr<RequestStream>> streams_;
    int64_t n_sequences_ = 0;
    int64_t n_running_ = 0;  // the scheduler's, as of the last step
    bool stopping_ = false;
    std::thread thread_;
};

}  // namespace tandem::serve

// The inference engine that `generate`, the server and reinforcement-learning rollouts share:
// requests (prompt ids, sampling parameters, limits, stop rules, n samples) go in from any
// thread; step() runs one model step over every running sequence and returns what happened to
// each (a token, newly final text, a finish). Scheduling is the Scheduler's, the model behind a
// StepModel, sampling the per-sequence Sampler's and text the per-sequence TextStream's.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "infer/sampler.h"
#include "infer/scheduler.h"
#include "infer/step_model.h"
#include "infer/text_stream.h"
#include "io/bpe_tokenizer.h"

namespace tandem::infer {

struct EngineOptions {
    int64_t max_seqs = 64;             // sequences running at once
    int64_t max_tokens_per_step = 0;   // 0: the model's max_tokens_per_step
    int64_t prefill_chunk = 256;       // prompt tokens of one sequence per step
    // Sequences share the cached keys and values of the prompt pages they have in common (a
    // system prompt, a conversation so far, n samples of one prompt). Off for a model whose
    // weights change under the engine or whose pages something else writes, unless that
    // something calls forget_prefix_cache() first.
    bool prefix_cache = false;
};

struct Request {
    std::vector<int32_t> prompt;  // token ids, not empty, shorter than the model's context
    SamplingParams sampling;      // logprobs and top_logprobs included
    int64_t max_tokens = 128;     // generated tokens per sequence at most, >= 0
    std::vector<int32_t> stop_ids;     // any of these ends a sequence (not part of its output)
    std::vector<std::string> stop;     // the text ends right before the first of these
    int64_t n = 1;  // sequences sampled from the prompt; sequence i draws with SampleKey.sequence i
};

using RequestId = int64_t;

enum class FinishReason { None, Stop, Length, Context, Cancelled };
// "stop", "length", "context", "cancelled" ("" for None): the names the API reports.
const char* finish_reason_name(FinishReason reason);

// What happened to one sequence in one step.
struct SequenceEvent {
    RequestId request = 0;
    int64_t sequence = 0;              // 0 .. n-1
    std::vector<SampledToken> tokens;  // generated this step (a stop token is not reported)
    std::string text;                  // newly final text
    FinishReason finish = FinishReason::None;
};

// One sequence of a finished request, as run_to_completion() gathers it.
struct Completion {
    std::vector<SampledToken> tokens;
    std::string text;
    FinishReason finish = FinishReason::None;
};

struct EngineStats {
    int64_t n_steps = 0;
    int64_t n_rows = 0;            // tokens run through the model (prompts, recomputation, decode)
    int64_t n_generated = 0;       // tokens sampled (stop tokens included)
    int64_t n_preemptions = 0;
    int64_t n_prefix_hits = 0;     // prompt positions taken from the prefix cache, not computed
};

class Engine {
public:
    // The model and the tokenizer must outlive the engine. Throws Error naming an option out of
    // range (max_tokens_per_step above the model's, a limit below 1).
    Engine(StepModel& model, const io::BpeTokenizer& tokenizer, EngineOptions options = {});
    ~Engine();

    // Thread-safe. Checks the request (Error naming the field) and queues it for the next step.
    RequestId submit(Request request);
    // Thread-safe. The request's sequences finish with "cancelled" at the next step; an unknown
    // or finished id is ignored.
    void cancel(RequestId id);

    // Runs one model step (on one thread at a time) and returns the events of this step:
    // requests submitted or cancelled since the last step are taken in first.
    std::vector<SequenceEvent> step();
    // Thread-safe. Whether a request is queued, running or waiting to be taken in.
    bool has_work() const;
    // Steps until every request is done, passing each event to on_event (when given).
    void run(const std::function<void(const SequenceEvent&)>& on_event = {});
    // Submits the requests, runs them to the end and returns [request][sequence].
    std::vector<std::vector<Completion>> run_to_completion(std::vector<Request> requests);

    // Forgets the prefix cache (on the stepping thread, between steps): the weights changed.
    void forget_prefix_cache() { scheduler_.forget_prefix_cache(); }

    const EngineStats& stats() const { return stats_; }
    const Scheduler& scheduler() const { return scheduler_; }
    int64_t vocab_size() const { return vocab_; }

private:
    struct Sequence;
    void take_inbox(std::vector<SequenceEvent>& events);
    void start(RequestId id, Request request, std::vector<SequenceEvent>& events);
    void finish(SeqId seq, FinishReason reason, SequenceEvent& event);
    void sample(SeqId seq, std::span<const float> logits, std::vector<SequenceEvent>& events);

    StepModel& model_;
    const io::BpeTokenizer& tokenizer_;
    // Fixed at construction, so that submit() on another thread reads nothing step() changes.
    int64_t model_vocab_, max_positions_;
    PageGeometry pages_;
    int64_t vocab_;  // ids that can be sampled: the model's and the tokenizer's in common
    Scheduler scheduler_;
    EngineStats stats_;

    std::unordered_map<SeqId, std::unique_ptr<Sequence>> seqs_;
    std::unordered_map<RequestId, std::vector<SeqId>> requests_;  // its unfinished sequences
    SeqId next_seq_ = 0;

    mutable std::mutex inbox_mutex_;  // guards what other threads touch: the inbox and the ids
    std::vector<std::pair<RequestId, Request>> inbox_;
    std::vector<RequestId> cancels_;
    RequestId next_request_ = 0;
    int64_t n_live_ = 0;  // requests submitted and not yet finished
};

}  // namespace tandem::infer

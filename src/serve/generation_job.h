// One completion or chat completion request from parsed body to answer: prompts tokenized (chat
// through the template), fitted to the context, submitted to the EngineLoop, and the engine's
// events gathered into a whole response or turned into server-sent events as they come. Choices
// are numbered prompt * n + sample. HTTP and the connection are the server's.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "serve/engine_loop.h"
#include "serve/openai_request.h"
#include "serve/openai_response.h"
#include "serve/served_model.h"

namespace tandem::serve {

class GenerationJob {
   public:
    // Tokenize, check against the context and submit. Throws ApiError: 400 for a prompt that
    // does not fit (or a chat to a model without a chat template), 429 when the server is full.
    // `seed` is used when the request names none.
    GenerationJob(const CompletionRequest& request, ServedModel& model, EngineLoop& loop,
                  ResponseMeta meta, uint64_t seed);
    GenerationJob(const ChatRequest& request, ServedModel& model, EngineLoop& loop,
                  ResponseMeta meta, uint64_t seed);
    ~GenerationJob();  // cancels sequences still running (a client gone mid-answer)
    GenerationJob(const GenerationJob&) = delete;
    GenerationJob& operator=(const GenerationJob&) = delete;

    bool is_stream() const { return options_.stream; }
    // stream: false. Waits for every choice and returns the response body. Throws ApiError 500
    // when the engine failed.
    std::string run_whole();
    // stream: true. Waits for the next events and appends their server-sent events to `out`;
    // returns false after the stream's end (usage when asked, then [DONE]) was appended.
    bool next_events(std::string& out);
    void cancel();
    // Watches the client while the job waits for the engine: `is_gone` is asked about every
    // kClientCheck (not before the first has passed, so quick answers never ask); once it says
    // yes, the job cancels its sequences, whose pages go back to the pool at the engine's next
    // step, and client_left() says so. The answer still ends as usual (cut short, "length").
    void watch_client(std::function<bool()> is_gone);
    bool client_left() const { return client_left_; }
    static constexpr std::chrono::milliseconds kClientCheck{50};

    int64_t n_prompt_tokens() const { return n_prompt_tokens_; }
    int64_t n_generated_tokens() const { return n_generated_; }

   private:
    struct ChoiceState {
        std::string text;
        std::vector<TokenLogprobs> logprobs;
        std::optional<FinishReason> finish;
        bool sent_role = false;
    };
    void submit(std::vector<std::vector<int32_t>> prompts, std::vector<int32_t> stop_ids,
                const std::string& prompt_param, uint64_t seed);
    std::vector<TokenLogprobs> logprobs_of(const infer::SequenceEvent& e) const;
    void throw_if_failed(const RequestStream& stream) const;
    // RequestStream::wait, in slices of kClientCheck while a client is watched.
    bool wait_events(RequestStream& stream, std::vector<infer::SequenceEvent>& events);

    ServedModel& model_;
    EngineLoop& loop_;
    ResponseMeta meta_;
    GenerationOptions options_;
    bool is_chat_;
    std::vector<std::shared_ptr<RequestStream>> streams_;  // one per prompt
    size_t current_ = 0;                                   // the stream next_events waits on
    std::vector<ChoiceState> choices_;
    int64_t n_prompt_tokens_ = 0, n_generated_ = 0;
    bool ended_ = false;
    std::function<bool()> is_client_gone_;  // empty: not watched
    std::chrono::steady_clock::time_point next_client_check_;
    bool client_left_ = false;
};

}  // namespace tandem::serve

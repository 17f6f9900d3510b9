// libFuzzer target for the OpenAI request parser: any bytes, read as a completions body and as a
// chat body, either parse into options that keep every documented range (and whose messages
// render with both chat templates), or are refused with a serve::ApiError whose error object is
// valid JSON. A crash, another exception type, a sanitizer report or a broken range is a bug.
// Run for 10 minutes (see CMakeLists.txt):
//   build/fuzz/fuzz/openai_request_fuzz -jobs=1 -max_total_time=600 -rss_limit_mb=2048 \
//     build/fuzz/fuzz/corpus/openai_request fuzz/corpus/openai_request
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string_view>

#include "io/chat_template.h"
#include "serve/openai_request.h"
#include "serve/openai_response.h"

using namespace tandem::serve;

namespace {

void check(bool ok) {
    if (!ok) __builtin_trap();
}

void check_options(const GenerationOptions& o, const RequestLimits& limits) {
    const tandem::infer::SamplingParams& s = o.sampling;
    check(o.n >= 1 && o.n <= limits.max_choices);
    check(!o.max_tokens || *o.max_tokens >= 1);
    check(o.stop.size() <= kMaxStopStrings);
    for (const std::string& stop : o.stop) check(!stop.empty());
    check(s.temperature >= 0 && s.temperature <= 2);
    check(s.top_p > 0 && s.top_p <= 1);
    check(s.top_k >= 0);
    check(s.min_p >= 0 && s.min_p <= 1);
    check(s.repetition_penalty > 0 && std::isfinite(s.repetition_penalty));
    check(std::fabs(s.presence_penalty) <= 2 && std::fabs(s.frequency_penalty) <= 2);
    check(s.top_logprobs >= 0 && s.top_logprobs <= 20);
    for (const auto& [id, bias] : s.logit_bias)
        check(id >= 0 && id < limits.vocab_size && std::fabs(bias) <= 100);
    check(!o.include_usage || o.stream);
}

tandem::io::ChatTemplate make(const char* source) {
    return tandem::io::ChatTemplate::recognise(source);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    static const tandem::io::ChatTemplate chatml =
        make("<|im_start|>{{ m }}<|im_end|> </think> reasoning_content enable_thinking");
    static const tandem::io::ChatTemplate llama3 =
        make("<|start_header_id|><|end_header_id|><|eot_id|> Cutting Knowledge Date: X\\n");
    const std::string_view body(reinterpret_cast<const char*>(data), size);
    const RequestLimits limits{16, 151936};
    try {
        const CompletionRequest r = parse_completion_request(body, limits);
        check_options(r.options, limits);
        check(!r.prompts.empty());
        check(int64_t(r.prompts.size()) * r.options.n <= limits.max_choices);
        for (const Prompt& p : r.prompts)
            for (int32_t id : p.tokens) check(id >= 0 && id < limits.vocab_size);
        check(fit_to_context(1, r.options, int64_t(1) << 40, "prompt") >= 1);
    } catch (const ApiError& e) {
        check(e.status == 400 || e.status == 413);
        check(nlohmann::json::accept(error_json(e)));
    }
    try {
        const ChatRequest r = parse_chat_request(body, limits);
        check_options(r.options, limits);
        check(!r.messages.empty());
        const std::string a = chatml.render(r.messages, true, r.enable_thinking);
        const std::string b = llama3.render(r.messages);
        check(a.size() >= r.messages.size() && b.size() >= r.messages.size());
        // The rendered text goes back out in a response: it must stay valid JSON there.
        const Choice choice{0, a, FinishReason::Stop, std::nullopt};
        check(nlohmann::json::accept(chat_completion_json({"id", 0, "m"}, {&choice, 1}, {})));
    } catch (const ApiError& e) {
        check(e.status == 400 || e.status == 413);
        check(nlohmann::json::accept(error_json(e)));
    }
    return 0;
}

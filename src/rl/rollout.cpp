// Sampling rollouts through the engine and scoring them under a reference model.
#include "rl/rollout.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "infer/generate.h"

namespace tandem::rl {

namespace {
constexpr int64_t kPageSize = 16;
int64_t pages_for(int64_t positions) { return (positions + kPageSize - 1) / kPageSize; }
}  // namespace

RolloutEngine::RolloutEngine(const model::Weights& weights, const io::BpeTokenizer& tokenizer,
                             int64_t n_seqs, int64_t n_positions) {
    // A step holds a decode row of every sequence and one prefill chunk.
    const int64_t prefill_chunk = std::min<int64_t>(n_positions, 256);
    model = std::make_unique<infer::PagedForward>(
        weights, infer::PagedForwardOptions{
                     .max_tokens_per_step = prefill_chunk + n_seqs,
                     .pages = {.n_pages = n_seqs * pages_for(n_positions), .page_size = kPageSize}});
    engine = std::make_unique<infer::Engine>(
        *model, tokenizer, infer::EngineOptions{.max_seqs = n_seqs, .prefill_chunk = prefill_chunk});
}

std::vector<Rollout> sample_rollouts(infer::Engine& engine, const io::BpeTokenizer& tokenizer,
                                     const Task& task, std::span<const Problem> problems,
                                     const RolloutOptions& options) {
    infer::GenerateOptions generate;
    generate.max_tokens = options.max_tokens;
    generate.sampling = options.sampling;
    generate.n = options.group_size;
    std::vector<infer::Request> requests;
    std::vector<std::vector<int32_t>> prompts;
    for (size_t i = 0; i < problems.size(); ++i) {
        generate.sampling.seed = options.sampling.seed + i;
        prompts.push_back(infer::encode_prompt(tokenizer, task.prompt(problems[i])));
        requests.push_back(infer::make_request(tokenizer, generate, prompts.back()));
    }
    std::vector<std::vector<infer::Completion>> done;
    try {
        done = engine.run_to_completion(requests);
    } catch (const Error& e) {
        throw Error("rollouts of task ", task.name(), ": ", e.what(), " (lower --max-tokens?)");
    }
    std::vector<Rollout> out;
    out.reserve(problems.size() * options.group_size);
    for (size_t i = 0; i < problems.size(); ++i)
        for (const infer::Completion& c : done[i]) {
            Rollout& r = out.emplace_back();
            r.problem = int64_t(i);
            r.prompt = prompts[i];
            for (const infer::SampledToken& t : c.tokens) r.completion.push_back(t.id);
            // The stop token is not reported, but it was sampled and is what ended the sequence:
            // the policy learns when to stop from it too.
            if (c.finish == infer::FinishReason::Stop && !requests[i].stop_ids.empty())
                r.completion.push_back(requests[i].stop_ids.front());
            r.text = c.text;
            r.finish = c.finish;
            r.reward = task.reward(problems[i], r.text, options.format_weight);
        }
    return out;
}

std::vector<double> completion_logprobs(infer::PagedForward& model, std::span<const Rollout> rollouts) {
    std::vector<double> out;
    for (const Rollout& r : rollouts) {
        if (r.completion.empty()) continue;
        const int64_t n = int64_t(r.prompt.size() + r.completion.size()) - 1;  // the last predicts nothing
        TANDEM_ASSERT(n <= model.max_tokens_per_step() && pages_for(n) <= model.pages().n_pages, n);
        infer::StepBatch step;
        step.n_seqs = 1;
        step.pages_per_seq = pages_for(n);
        for (int64_t p = 0; p < step.pages_per_seq; ++p) step.page_table.push_back(int32_t(p));
        const int64_t first = int64_t(r.prompt.size()) - 1;  // predicts completion[0]
        for (int64_t t = 0; t < n; ++t) {
            step.tokens.push_back(t < int64_t(r.prompt.size()) ? r.prompt[t] : r.completion[t - r.prompt.size()]);
            step.positions.push_back(int32_t(t));
            step.seq_index.push_back(0);
            if (t >= first) step.logit_rows.push_back(int32_t(t));
        }
        const std::span<const float> logits = model.run(step);
        const int64_t V = model.vocab_size();
        for (size_t k = 0; k < r.completion.size(); ++k) {
            const std::span<const float> row = logits.subspan(k * V, V);
            const float top = *std::max_element(row.begin(), row.end());
            double sum = 0;
            for (float x : row) sum += std::exp(double(x) - top);
            out.push_back(double(row[r.completion[k]]) - top - std::log(sum));
        }
    }
    return out;
}

}  // namespace tandem::rl

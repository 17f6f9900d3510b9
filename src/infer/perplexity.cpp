// Perplexity over windows: window w holds tokens [w ctx, min((w+1) ctx, n)); its rows run in
// position order, chunk rows a step, all with logits, and row i's logits score token i+1 of the
// window. Sums are in double so that a long text's mean does not drift.
#include "infer/perplexity.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "core/error.h"

namespace tandem::infer {

int64_t default_ctx(int64_t max_positions) {
    return std::min(max_positions, kPerplexityCtxCap);
}

double token_nll(std::span<const float> logits, int32_t target) {
    double max = -INFINITY;
    for (float x : logits) max = std::max(max, double(x));
    double sum = 0;
    for (float x : logits) sum += std::exp(double(x) - max);
    return std::log(sum) + max - double(logits[target]);
}

namespace {

void validate(const StepModel& model, std::span<const int32_t> tokens, int64_t ctx,
              int64_t chunk) {
    const int64_t n_tokens = static_cast<int64_t>(tokens.size());
    if (n_tokens < 2)
        throw Error("perplexity: the text is ", n_tokens,
                    " token(s) long, but scoring needs at least 2 (one to predict from, one to "
                    "predict); give a longer text");
    if (ctx < 2 || ctx > model.max_positions())
        throw Error("perplexity: ctx ", ctx, " is outside [2, ", model.max_positions(),
                    "] (the model's context); choose a window in that range");
    if (chunk < 1 || chunk > model.max_tokens_per_step())
        throw Error("perplexity: chunk ", chunk, " is outside [1, ", model.max_tokens_per_step(),
                    "] (the model's rows per step)");
    const PageGeometry pages = model.pages();
    const int64_t needed = (ctx + pages.page_size - 1) / pages.page_size;
    if (needed > pages.n_pages)
        throw Error("perplexity: a window of ", ctx, " tokens needs ", needed, " pages of ",
                    pages.page_size, " positions, but the model's cache has ", pages.n_pages,
                    "; give it more pages or a smaller ctx");
    // A window's last token is only a target, never a step's input: check every id here.
    for (int64_t i = 0; i < n_tokens; ++i)
        if (tokens[i] < 0 || tokens[i] >= model.vocab_size())
            throw Error("perplexity: token ", tokens[i], " at index ", i,
                        " is outside the model's vocabulary [0, ", model.vocab_size(),
                        "); encode the text with the model's own tokenizer");
}

}  // namespace

PerplexityResult perplexity(StepModel& model, std::span<const int32_t> tokens,
                            const PerplexityOptions& options,
                            const std::function<void(const PerplexityProgress&)>& progress) {
    const int64_t n = static_cast<int64_t>(tokens.size());
    const int64_t ctx = options.ctx > 0 ? options.ctx : default_ctx(model.max_positions());
    const int64_t chunk = options.chunk > 0 ? options.chunk : model.max_tokens_per_step();
    validate(model, tokens, ctx, chunk);
    const int64_t V = model.vocab_size(), page_size = model.pages().page_size;

    StepBatch batch;
    batch.n_seqs = 1;
    batch.pages_per_seq = (ctx + page_size - 1) / page_size;
    batch.page_table.resize(batch.pages_per_seq);
    std::iota(batch.page_table.begin(), batch.page_table.end(), 0);

    double sum = 0;
    int64_t n_scored = 0;
    for (int64_t start = 0; start < n; start += ctx) {
        const int64_t len = std::min(ctx, n - start);
        // A last window of one token predicts nothing: skip it (its token was not scored).
        for (int64_t pos = 0; len >= 2 && pos < len; pos += chunk) {
            const int64_t rows = std::min(chunk, len - pos);
            batch.tokens.assign(tokens.begin() + start + pos, tokens.begin() + start + pos + rows);
            batch.positions.resize(rows);
            std::iota(batch.positions.begin(), batch.positions.end(), int32_t(pos));
            batch.seq_index.assign(rows, 0);
            batch.logit_rows.resize(rows);
            std::iota(batch.logit_rows.begin(), batch.logit_rows.end(), 0);
            const std::span<const float> logits = model.run(batch);
            for (int64_t r = 0; r < rows; ++r) {
                const int64_t next = pos + r + 1;  // the window position this row predicts
                if (next >= len) break;
                sum += token_nll(logits.subspan(r * V, V), tokens[start + next]);
                ++n_scored;
            }
            if (progress) progress({.n_done = start + pos + rows, .n_total = n});
        }
    }
    const double nll = sum / double(n_scored);
    return {.n_tokens = n_scored, .nll = nll, .perplexity = std::exp(nll)};
}

}  // namespace tandem::infer

// Cross-backend agreement: decode on each backend, compare every pair.
#include "infer/verify.h"

#include <algorithm>
#include <cmath>

#include "backend/registry.h"
#include "core/error.h"
#include "infer/decoder.h"

namespace tandem::infer {

namespace {

// The logits a backend gives at each generated position of one prompt.
using LogitRows = std::vector<std::vector<float>>;

int32_t argmax(const std::vector<float>& row) {
    return static_cast<int32_t>(std::max_element(row.begin(), row.end()) - row.begin());
}

// Feeds `prompt`, then `forced` token by token (or, when `forced` is empty, its own greedy choice
// for n_tokens), returning the logits before each token and filling `forced` when it chose.
LogitRows decode(Decoder& decoder, const std::vector<int32_t>& prompt, std::vector<int32_t>& forced,
                 int64_t n_tokens) {
    decoder.reset();
    const bool is_greedy = forced.empty();
    LogitRows rows;
    const std::vector<float>* logits = nullptr;
    for (size_t at = 0; at < prompt.size();) {
        const int64_t n = std::min<int64_t>(decoder.max_chunk(), prompt.size() - at);
        logits = &decoder.feed(std::span(prompt).subspan(at, n), 1, n);
        at += n;
    }
    for (int64_t i = 0; i < n_tokens; ++i) {
        rows.push_back(*logits);
        if (is_greedy) forced.push_back(argmax(rows.back()));
        if (i + 1 < n_tokens) logits = &decoder.feed(std::span(&forced[i], 1), 1, 1);
    }
    return rows;
}

}  // namespace

void compare_logits(PairReport& r, const LogitRows& a, const LogitRows& b,
                    const std::vector<int32_t>& seq, double tolerance) {
    bool is_leading = true;
    for (size_t p = 0; p < a.size(); ++p) {
        double scale = 1, diff = 0;
        for (size_t v = 0; v < a[p].size(); ++v) {
            scale = std::max(scale, std::fabs(double(a[p][v])));
            diff = std::max(diff, std::fabs(double(a[p][v]) - double(b[p][v])));
        }
        r.max_diff = std::max(r.max_diff, diff);
        r.max_relative = std::max(r.max_relative, diff / scale);
        if (diff / scale > tolerance) r.is_ok = false;
        const int32_t top_a = argmax(a[p]), top_b = argmax(b[p]);
        ++r.n_positions;
        ++r.n_greedy;
        if (top_a == top_b) {
            ++r.top1_agree;
        } else {
            // Two candidates closer than the tolerance may swap on any backend: not a failure.
            const double margin = std::fabs(double(a[p][top_a]) - double(a[p][top_b]));
            if (margin <= 2 * tolerance * scale) ++r.near_ties;
            else r.is_ok = false;
        }
        is_leading = is_leading && top_a == seq[p] && top_b == seq[p];
        if (is_leading) ++r.greedy_agree;
    }
}

bool VerifyReport::is_ok() const {
    return std::all_of(pairs.begin(), pairs.end(), [](const PairReport& p) { return p.is_ok; });
}

VerifyReport verify_backends(const ModelSource& source, const io::BpeTokenizer& tokenizer,
                             const VerifyOptions& options,
                             const std::function<void(const std::string&)>& on_progress) {
    if (options.backends.size() < 2)
        throw Error("--backends needs at least two of ", [] {
            std::string all;
            for (const auto& b : backend::available_backends()) all += (all.empty() ? "" : ", ") + b;
            return all;
        }(), " (the backends available here)");
    if (options.prompts.empty()) throw Error("verify: no prompts");
    if (options.n_tokens < 1) throw Error("--tokens must be >= 1, got ", options.n_tokens);
    const int64_t context = source.config().max_seq_len;

    std::vector<std::vector<int32_t>> prompts, sequences(options.prompts.size());
    for (const auto& text : options.prompts) {
        std::vector<int32_t> ids = tokenizer.encode_with_special(text);
        if (ids.empty()) ids.push_back(tokenizer.eot_id());
        if (static_cast<int64_t>(ids.size()) + options.n_tokens > context)
            throw Error("verify: a prompt of ", ids.size(), " tokens plus --tokens ", options.n_tokens,
                        " exceeds the model's context of ", context);
        prompts.push_back(std::move(ids));
    }
    // runs[backend][prompt]: one backend's weights live at a time.
    std::vector<std::vector<LogitRows>> runs;
    for (const auto& name : options.backends) {
        backend::Backend& be = backend::get_backend(name);
        if (on_progress) on_progress("loading the weights on " + name);
        const model::Weights weights = options.quant
                                           ? load_weights_quantized(source, be, *options.quant)
                                           : load_weights(source, be, DType::F32);
        Decoder decoder(weights, 1, context, std::min<int64_t>(context, 256));
        runs.emplace_back();
        for (size_t i = 0; i < prompts.size(); ++i) {
            if (on_progress)
                on_progress(name + ": prompt " + std::to_string(i + 1) + " of " + std::to_string(prompts.size()));
            runs.back().push_back(decode(decoder, prompts[i], sequences[i], options.n_tokens));
        }
    }
    VerifyReport report;
    for (size_t a = 0; a < runs.size(); ++a)
        for (size_t b = a + 1; b < runs.size(); ++b) {
            PairReport pair{.a = options.backends[a], .b = options.backends[b]};
            for (size_t i = 0; i < prompts.size(); ++i)
                compare_logits(pair, runs[a][i], runs[b][i], sequences[i], options.tolerance);
            report.pairs.push_back(pair);
        }
    return report;
}

}  // namespace tandem::infer

// The GRPO objective's arithmetic, in double: advantages, per-token terms, aggregation.
#include "rl/grpo_loss.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "model/model.h"

namespace tandem::rl {

AdvantageMode advantage_mode_from_string(const std::string& name) {
    if (name == "grpo") return AdvantageMode::Grpo;
    if (name == "dr_grpo") return AdvantageMode::DrGrpo;
    throw Error("advantage '", name, "' is not one of grpo, dr_grpo");
}

std::vector<double> group_advantages(std::span<const double> rewards, int64_t group_size,
                                     AdvantageMode mode) {
    const int64_t n = int64_t(rewards.size());
    if (group_size < 2 || n % group_size != 0)
        throw Error("group size ", group_size, " must be at least 2 and divide the ", n,
                    " rewards (completions per prompt)");
    std::vector<double> out(rewards.size());
    for (int64_t g = 0; g < n; g += group_size) {
        const std::span<const double> group = rewards.subspan(g, group_size);
        double mean = 0;
        for (double r : group) mean += r;
        mean /= double(group_size);
        double var = 0;
        for (double r : group) var += (r - mean) * (r - mean);
        const double std = std::sqrt(var / double(group_size - 1));
        for (int64_t i = 0; i < group_size; ++i) {
            const double centred = group[i] - mean;
            // A group of equal rewards has no signal: exact zeros, not (0 / 1e-4) rounding.
            out[g + i] = centred == 0 ? 0.0 : mode == AdvantageMode::Grpo ? centred / (std + 1e-4) : centred;
        }
    }
    return out;
}

TokenTerm grpo_token_term(double logp, double logp_old, double logp_ref, double advantage,
                          const GrpoLossConfig& config) {
    TokenTerm t;
    const double ratio = std::exp(logp - logp_old);
    const double clipped = std::clamp(ratio, 1 - config.epsilon_low, 1 + config.epsilon_high);
    const double unclipped_term = ratio * advantage, clipped_term = clipped * advantage;
    // min(rA, clip(r)A): where the clipped term is smaller it is constant in logp (the ratio is
    // outside the range), and the token's gradient is 0. At equality both are rA.
    if (unclipped_term <= clipped_term) {
        t.loss = -unclipped_term;
        t.dloss_dlogp = -unclipped_term;
    } else {
        t.loss = -clipped_term;
        t.is_clipped = true;
    }
    if (config.beta > 0) {
        const double d = logp_ref - logp;  // k3 = e^d - d - 1 >= 0, unbiased for KL(pi || ref)
        t.kl = std::exp(d) - d - 1;
        t.loss += config.beta * t.kl;
        t.dloss_dlogp += config.beta * (1 - std::exp(d));
    }
    return t;
}

double grpo_normalizer(int64_t n_tokens, int64_t n_sequences, const GrpoLossConfig& config) {
    if (config.mode == AdvantageMode::DrGrpo) {
        if (config.max_completion_tokens < 1)
            throw Error("dr_grpo needs max_completion_tokens >= 1, got ", config.max_completion_tokens);
        return double(n_sequences) * double(config.max_completion_tokens);
    }
    return double(std::max<int64_t>(n_tokens, 1));
}

GrpoTerms grpo_terms(const GrpoMicroBatch& b, const GrpoLossConfig& config, double scale) {
    const size_t n = size_t(b.B * b.T);
    TANDEM_ASSERT(b.targets.size() == n && b.logp.size() == n && b.logp_old.size() == n &&
                      b.advantages.size() == size_t(b.B) && (config.beta == 0 || b.logp_ref.size() == n),
                  b.B, b.T, b.targets.size(), b.logp.size(), b.logp_old.size(), b.logp_ref.size());
    GrpoTerms out;
    out.weights.assign(n, 0.0f);
    for (int64_t row = 0; row < b.B; ++row)
        for (int64_t t = 0; t < b.T; ++t) {
            const size_t i = size_t(row * b.T + t);
            if (b.targets[i] == model::kIgnoreIndex) continue;
            const TokenTerm term = grpo_token_term(b.logp[i], b.logp_old[i],
                                                   config.beta > 0 ? b.logp_ref[i] : 0.0,
                                                   b.advantages[row], config);
            out.loss_sum += scale * term.loss;
            out.kl_sum += term.kl;
            out.n_clipped += term.is_clipped;
            ++out.n_tokens;
            out.weights[i] = float(-scale * term.dloss_dlogp);
        }
    return out;
}

}  // namespace tandem::rl

// GRPO's objective, as plain functions over host arrays: group-relative advantages, the clipped
// surrogate per completion token with an optional k3 KL penalty to a reference, and token-level
// aggregation. The gradient reaches the logits through cross-entropy's weighted backward: for a
// token whose loss is l(logp), dl/dlogits = -dl/dlogp * (onehot - softmax) = w * (softmax -
// onehot) with w = -dl/dlogp, so Model::set_loss_weights(w) and the usual backward compute it.
//
//   r = exp(logp - logp_old)
//   l = -min(r A, clip(r, 1 - eps_low, 1 + eps_high) A) + beta * (exp(ref - logp) - (ref - logp) - 1)
//   dl/dlogp = -r A where the unclipped term is the minimum, else 0; + beta * (1 - exp(ref - logp))
//   loss = sum over completion tokens of l / Z, Z = completion tokens (token-level mean), or
//          sequences x max_completion_tokens (Dr. GRPO: no length normalisation)
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace tandem::rl {

enum class AdvantageMode {
    Grpo,    // (r - mean) / (std + 1e-4) within the group (std unbiased, as torch's .std())
    DrGrpo,  // r - mean: no std normalisation (Liu et al. 2025, "Dr. GRPO")
};
AdvantageMode advantage_mode_from_string(const std::string& name);  // "grpo", "dr_grpo"

struct GrpoLossConfig {
    AdvantageMode mode = AdvantageMode::Grpo;
    double epsilon_low = 0.2, epsilon_high = 0.2;  // the ratio is clipped to [1 - low, 1 + high]
    double beta = 0;                               // weight of the k3 KL to the reference
    int64_t max_completion_tokens = 0;             // Dr. GRPO's normaliser per sequence, > 0 there
};

// rewards: [n_groups * group_size], the completions of one prompt consecutive. Returns one
// advantage per completion; a group whose rewards are all equal gets zeros. Throws Error for a
// group size below 2 or one that does not divide the rewards.
std::vector<double> group_advantages(std::span<const double> rewards, int64_t group_size,
                                     AdvantageMode mode);

struct TokenTerm {
    double loss = 0;         // l
    double dloss_dlogp = 0;  // dl/dlogp
    double kl = 0;           // the k3 estimate (0 without a reference)
    bool is_clipped = false;  // the clipped term is the minimum and the ratio is outside the range
};
// logp_ref is read only when config.beta > 0.
TokenTerm grpo_token_term(double logp, double logp_old, double logp_ref, double advantage,
                          const GrpoLossConfig& config);

// The aggregation's denominator Z for a batch of n_sequences completions holding n_tokens.
double grpo_normalizer(int64_t n_tokens, int64_t n_sequences, const GrpoLossConfig& config);

// One micro-batch as the training model sees it: B rows of T positions, each row one rollout
// (prompt and completion), targets kIgnoreIndex everywhere but at completion tokens.
struct GrpoMicroBatch {
    int64_t B = 0, T = 0;
    std::span<const int32_t> targets;    // [B, T]
    std::span<const double> logp;        // [B, T] log p(target) under the current weights
    std::span<const double> logp_old;    // [B, T] under the weights that sampled the rollouts
    std::span<const double> logp_ref;    // [B, T] under the reference; empty when beta == 0
    std::span<const double> advantages;  // [B]
};

struct GrpoTerms {
    double loss_sum = 0;  // scale * sum of l over the completion tokens
    double kl_sum = 0;    // sum of k3 over them
    int64_t n_clipped = 0, n_tokens = 0;
    std::vector<float> weights;  // [B, T]: scale * -dl/dlogp at completion tokens, 0 elsewhere
};
// scale is 1 / Z for the loss itself, or what a caller's backward needs on top of its own dloss.
GrpoTerms grpo_terms(const GrpoMicroBatch& batch, const GrpoLossConfig& config, double scale);

}  // namespace tandem::rl

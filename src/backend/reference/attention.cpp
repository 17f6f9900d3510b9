// Reference rotary embedding and causal (grouped-query) attention. Attention materialises the
// scores of one query row at a time; backward recomputes the probabilities from q, k and the
// saved lse, and accumulates every gradient in a double copy of dqkv.
#include <cmath>
#include <limits>
#include <numbers>
#include <vector>

#include "backend/reference/kernels.h"

namespace tandem::backend::reference {

namespace {

// Where the heads of position (b, t) live in qkv [B, T, (H + 2 Hkv) * D].
struct QkvIndex {
    int64_t T, H, Hkv, D, W;
    int64_t q(int64_t b, int64_t t, int64_t h) const { return (b * T + t) * W + h * D; }
    int64_t k(int64_t b, int64_t t, int64_t g) const { return (b * T + t) * W + (H + g) * D; }
    int64_t v(int64_t b, int64_t t, int64_t g) const { return (b * T + t) * W + (H + Hkv + g) * D; }
};

QkvIndex index_of(Tensor qkv, int64_t H, int64_t Hkv) {
    const int64_t W = qkv.size(2);
    return {qkv.size(1), H, Hkv, W / (H + 2 * Hkv), W};
}

// Scaled scores q_t . k_s / sqrt(D) for s <= t, in double.
template <typename Real>
void scores_row(std::vector<double>& scores, const Real* x, const QkvIndex& ix, int64_t b,
                int64_t t, int64_t h) {
    const int64_t g = h / (ix.H / ix.Hkv);
    const double scale = 1.0 / std::sqrt(double(ix.D));
    scores.assign(t + 1, 0.0);
    for (int64_t s = 0; s <= t; ++s) {
        double dot = 0;
        for (int64_t d = 0; d < ix.D; ++d)
            dot += double(x[ix.q(b, t, h) + d]) * x[ix.k(b, s, g) + d];
        scores[s] = dot * scale;
    }
}

// Llama 3's rescaling of one inverse frequency f, as transformers' _compute_llama3_parameters
// writes it (the same math as RopeParams::inv_freq, spelled out here independently).
double llama3_inv_freq(double f, const RopeScaling& s) {
    const double wavelen = 2.0 * std::numbers::pi / f;
    const double low_freq_wavelen = double(s.original_max_positions) / s.low_freq_factor;
    const double high_freq_wavelen = double(s.original_max_positions) / s.high_freq_factor;
    if (wavelen > low_freq_wavelen) return f / s.factor;
    if (wavelen < high_freq_wavelen) return f;
    const double smooth = (double(s.original_max_positions) / wavelen - s.low_freq_factor) /
                          (double(s.high_freq_factor) - s.low_freq_factor);
    return (1.0 - smooth) * f / s.factor + smooth * f;
}

}  // namespace

namespace {

// Rotates the q and k heads of one position (v untouched) by its angles, or by minus them.
template <typename Real>
void rotate_position(Real* x, int64_t heads, int64_t D, double pos, const RopeParams& params,
                     bool inverse) {
    const int64_t half = D / 2;
    for (int64_t h = 0; h < heads; ++h, x += D)
        for (int64_t i = 0; i < half; ++i) {
            double inv_freq = std::pow(double(params.theta), -2.0 * i / double(D));
            if (params.scaling.is_on()) inv_freq = llama3_inv_freq(inv_freq, params.scaling);
            const double angle = pos * inv_freq;
            const double c = std::cos(angle), s = inverse ? -std::sin(angle) : std::sin(angle);
            const double x0 = x[i], x1 = x[i + half];
            x[i] = static_cast<Real>(x0 * c - x1 * s);
            x[i + half] = static_cast<Real>(x1 * c + x0 * s);
        }
}

}  // namespace

template <typename Real>
void rope(Tensor qkv, int64_t H, int64_t Hkv, const RopeParams& params, int64_t pos_offset,
          bool inverse) {
    const int64_t B = qkv.size(0), T = qkv.size(1), W = qkv.size(2), D = W / (H + 2 * Hkv);
    for (int64_t b = 0; b < B; ++b)
        for (int64_t t = 0; t < T; ++t)
            rotate_position(qkv.as<Real>() + (b * T + t) * W, H + Hkv, D, double(pos_offset + t),
                            params, inverse);
}

template <typename Real>
void rope_at(Tensor qkv, Tensor positions, int64_t H, int64_t Hkv, const RopeParams& params) {
    const int64_t N = qkv.size(0), W = qkv.size(1), D = W / (H + 2 * Hkv);
    for (int64_t n = 0; n < N; ++n)
        rotate_position(qkv.as<Real>() + n * W, H + Hkv, D, double(positions.as<int32_t>()[n]),
                        params, false);
}

template <typename Real>
void attention_forward(Tensor out, Tensor lse, Tensor qkv, int64_t H, int64_t Hkv) {
    const QkvIndex ix = index_of(qkv, H, Hkv);
    const int64_t B = qkv.size(0), T = ix.T, D = ix.D;
    const Real* x = qkv.as<Real>();
    std::vector<double> scores, acc(D);
    for (int64_t b = 0; b < B; ++b)
        for (int64_t h = 0; h < H; ++h)
            for (int64_t t = 0; t < T; ++t) {
                scores_row(scores, x, ix, b, t, h);
                double mx = -std::numeric_limits<double>::infinity();
                for (double s : scores) mx = std::max(mx, s);
                double denom = 0;
                for (double s : scores) denom += std::exp(s - mx);
                const double l = mx + std::log(denom);
                const int64_t g = h / (H / Hkv);
                std::fill(acc.begin(), acc.end(), 0.0);
                for (int64_t s = 0; s <= t; ++s) {
                    const double p = std::exp(scores[s] - l);
                    for (int64_t d = 0; d < D; ++d) acc[d] += p * x[ix.v(b, s, g) + d];
                }
                Real* o = out.as<Real>() + (b * T + t) * H * D + h * D;
                for (int64_t d = 0; d < D; ++d) o[d] = static_cast<Real>(acc[d]);
                lse.as<Real>()[(b * H + h) * T + t] = static_cast<Real>(l);
            }
}

template <typename Real>
void attention_backward(Tensor dqkv, Tensor dout, Tensor qkv, Tensor out, Tensor lse, int64_t H,
                        int64_t Hkv) {
    // With p_s = exp(score_s - lse) and dp_s = dout . v_s:
    // dscore_s = p_s (dp_s - sum_r p_r dp_r); dq = sum_s dscore_s k_s / sqrt(D);
    // dk_s += dscore_s q / sqrt(D); dv_s += p_s dout.
    const QkvIndex ix = index_of(qkv, H, Hkv);
    const int64_t B = qkv.size(0), T = ix.T, D = ix.D;
    const double scale = 1.0 / std::sqrt(double(D));
    const Real* x = qkv.as<Real>();
    std::vector<double> grad(qkv.numel(), 0.0), scores, dp;
    for (int64_t b = 0; b < B; ++b)
        for (int64_t h = 0; h < H; ++h)
            for (int64_t t = 0; t < T; ++t) {
                const int64_t g = h / (H / Hkv);
                const Real* go = dout.as<Real>() + (b * T + t) * H * D + h * D;
                const double l = lse.as<Real>()[(b * H + h) * T + t];
                scores_row(scores, x, ix, b, t, h);
                dp.assign(t + 1, 0.0);
                double p_dot_dp = 0;
                for (int64_t s = 0; s <= t; ++s) {
                    scores[s] = std::exp(scores[s] - l);  // now the probability p_s
                    for (int64_t d = 0; d < D; ++d) dp[s] += double(go[d]) * x[ix.v(b, s, g) + d];
                    p_dot_dp += scores[s] * dp[s];
                }
                for (int64_t s = 0; s <= t; ++s) {
                    const double p = scores[s], ds = p * (dp[s] - p_dot_dp) * scale;
                    for (int64_t d = 0; d < D; ++d) {
                        grad[ix.q(b, t, h) + d] += ds * x[ix.k(b, s, g) + d];
                        grad[ix.k(b, s, g) + d] += ds * x[ix.q(b, t, h) + d];
                        grad[ix.v(b, s, g) + d] += p * go[d];
                    }
                }
            }
    for (int64_t i = 0; i < dqkv.numel(); ++i) dqkv.as<Real>()[i] = static_cast<Real>(grad[i]);
}

TANDEM_REFERENCE_INSTANTIATE(rope, Tensor, int64_t, int64_t, const RopeParams&, int64_t, bool);
TANDEM_REFERENCE_INSTANTIATE(rope_at, Tensor, Tensor, int64_t, int64_t, const RopeParams&);
TANDEM_REFERENCE_INSTANTIATE(attention_forward, Tensor, Tensor, Tensor, int64_t, int64_t);
TANDEM_REFERENCE_INSTANTIATE(attention_backward, Tensor, Tensor, Tensor, Tensor, Tensor, int64_t,
                             int64_t);

}  // namespace tandem::backend::reference

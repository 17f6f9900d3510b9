// Reference LayerNorm, RMSNorm and the per-head RMSNorm of q and k (Qwen3). Every row statistic
// and every parameter-gradient sum is accumulated in double.
#include <cmath>
#include <vector>

#include "backend/reference/kernels.h"

namespace tandem::backend::reference {

namespace {

// One RMSNorm row: y = x * rstd * w; returns rstd. y may alias x.
template <typename Real>
double rms_norm_row(Real* y, const Real* x, const Real* w, int64_t C, float eps) {
    double ss = 0;
    for (int64_t c = 0; c < C; ++c) ss += double(x[c]) * x[c];
    const double rstd = 1.0 / std::sqrt(ss / C + eps);
    for (int64_t c = 0; c < C; ++c) y[c] = static_cast<Real>(x[c] * rstd * w[c]);
    return rstd;
}

// One RMSNorm row backward with y = x * r * w, r = (mean(x^2) + eps)^(-1/2):
// dx_j = r dy_j w_j - r^3 x_j / C * sum_i dy_i w_i x_i. dweight_acc += dy * x * r.
// Writes dx (+= when accumulate); dx may alias dy.
template <typename Real>
void rms_norm_row_backward(Real* dx, double* dweight_acc, const Real* dy, const Real* x,
                           const Real* w, double rstd, int64_t C, bool accumulate) {
    double dot = 0;
    for (int64_t c = 0; c < C; ++c) dot += double(dy[c]) * w[c] * x[c];
    for (int64_t c = 0; c < C; ++c) dweight_acc[c] += double(dy[c]) * x[c] * rstd;
    const double k = rstd * rstd * rstd * dot / C;
    for (int64_t c = 0; c < C; ++c) {
        const double g = rstd * dy[c] * w[c] - k * x[c];
        dx[c] = static_cast<Real>(accumulate ? dx[c] + g : g);
    }
}

template <typename Real>
void add_into(Tensor param_grad, const std::vector<double>& acc) {
    Real* g = param_grad.as<Real>();
    for (size_t c = 0; c < acc.size(); ++c) g[c] = static_cast<Real>(g[c] + acc[c]);
}

}  // namespace

template <typename Real>
void layer_norm_forward(Tensor y, Tensor mean, Tensor rstd, Tensor x, Tensor weight, Tensor bias,
                        float eps) {
    const int64_t N = x.rows(), C = x.cols();
    const Real *w = weight.as<Real>(), *bb = bias.as<Real>();
    for (int64_t n = 0; n < N; ++n) {
        const Real* xr = x.as<Real>() + n * C;
        Real* yr = y.as<Real>() + n * C;
        double m = 0;
        for (int64_t c = 0; c < C; ++c) m += xr[c];
        m /= C;
        double var = 0;  // two passes: no cancellation from E[x^2] - E[x]^2
        for (int64_t c = 0; c < C; ++c) var += (xr[c] - m) * (xr[c] - m);
        var /= C;
        const double r = 1.0 / std::sqrt(var + eps);
        for (int64_t c = 0; c < C; ++c) yr[c] = static_cast<Real>((xr[c] - m) * r * w[c] + bb[c]);
        mean.as<Real>()[n] = static_cast<Real>(m);
        rstd.as<Real>()[n] = static_cast<Real>(r);
    }
}

template <typename Real>
void layer_norm_backward(Tensor dx, Tensor dweight, Tensor dbias, Tensor dy, Tensor x,
                         Tensor weight, Tensor mean, Tensor rstd) {
    // With xhat = (x - mean) rstd and g = dy * w:
    // dx = rstd * (g - mean(g) - xhat * mean(g * xhat)).
    const int64_t N = x.rows(), C = x.cols();
    const Real* w = weight.as<Real>();
    std::vector<double> dw(C), db(C);
    for (int64_t n = 0; n < N; ++n) {
        const Real* xr = x.as<Real>() + n * C;
        const Real* dyr = dy.as<Real>() + n * C;
        Real* dxr = dx.as<Real>() + n * C;
        const double m = mean.as<Real>()[n], r = rstd.as<Real>()[n];
        double g_mean = 0, gx_mean = 0;
        for (int64_t c = 0; c < C; ++c) {
            const double xhat = (xr[c] - m) * r;
            g_mean += double(dyr[c]) * w[c];
            gx_mean += double(dyr[c]) * w[c] * xhat;
            dw[c] += dyr[c] * xhat;
            db[c] += dyr[c];
        }
        g_mean /= C;
        gx_mean /= C;
        for (int64_t c = 0; c < C; ++c) {
            const double xhat = (xr[c] - m) * r;
            dxr[c] =
                static_cast<Real>(dxr[c] + r * (double(dyr[c]) * w[c] - g_mean - xhat * gx_mean));
        }
    }
    add_into<Real>(dweight, dw);
    add_into<Real>(dbias, db);
}

template <typename Real>
void rms_norm_forward(Tensor y, Tensor rstd, Tensor x, Tensor weight, float eps) {
    const int64_t N = x.rows(), C = x.cols();
    for (int64_t n = 0; n < N; ++n)
        rstd.as<Real>()[n] = static_cast<Real>(
            rms_norm_row(y.as<Real>() + n * C, x.as<Real>() + n * C, weight.as<Real>(), C, eps));
}

template <typename Real>
void rms_norm_backward(Tensor dx, Tensor dweight, Tensor dy, Tensor x, Tensor weight, Tensor rstd) {
    const int64_t N = x.rows(), C = x.cols();
    std::vector<double> dw(C);
    for (int64_t n = 0; n < N; ++n)
        rms_norm_row_backward(dx.as<Real>() + n * C, dw.data(), dy.as<Real>() + n * C,
                              x.as<Real>() + n * C, weight.as<Real>(), double(rstd.as<Real>()[n]),
                              C, /*accumulate=*/true);
    add_into<Real>(dweight, dw);
}

template <typename Real>
void qk_norm_forward(Tensor y, Tensor rstd, Tensor qkv, Tensor q_weight, Tensor k_weight, int64_t H,
                     int64_t Hkv, float eps) {
    const int64_t rows = qkv.size(0) * qkv.size(1), W = qkv.size(2), D = W / (H + 2 * Hkv);
    for (int64_t r = 0; r < rows; ++r) {
        const Real* x = qkv.as<Real>() + r * W;
        Real* out = y.as<Real>() + r * W;
        for (int64_t h = 0; h < H + Hkv; ++h) {
            const Real* w = h < H ? q_weight.as<Real>() : k_weight.as<Real>();
            rstd.as<Real>()[r * (H + Hkv) + h] =
                static_cast<Real>(rms_norm_row(out + h * D, x + h * D, w, D, eps));
        }
        for (int64_t c = (H + Hkv) * D; c < W; ++c) out[c] = x[c];  // v heads
    }
}

template <typename Real>
void qk_norm_backward(Tensor dqkv, Tensor dq_weight, Tensor dk_weight, Tensor dy, Tensor qkv,
                      Tensor q_weight, Tensor k_weight, Tensor rstd, int64_t H, int64_t Hkv) {
    const int64_t rows = qkv.size(0) * qkv.size(1), W = qkv.size(2), D = W / (H + 2 * Hkv);
    std::vector<double> dwq(D), dwk(D);
    for (int64_t r = 0; r < rows; ++r) {
        const Real* x = qkv.as<Real>() + r * W;
        const Real* g = dy.as<Real>() + r * W;
        Real* dx = dqkv.as<Real>() + r * W;
        for (int64_t h = 0; h < H + Hkv; ++h) {
            const bool is_q = h < H;
            rms_norm_row_backward(dx + h * D, is_q ? dwq.data() : dwk.data(), g + h * D, x + h * D,
                                  is_q ? q_weight.as<Real>() : k_weight.as<Real>(),
                                  double(rstd.as<Real>()[r * (H + Hkv) + h]), D,
                                  /*accumulate=*/false);
        }
        for (int64_t c = (H + Hkv) * D; c < W; ++c) dx[c] = g[c];
    }
    add_into<Real>(dq_weight, dwq);
    add_into<Real>(dk_weight, dwk);
}

TANDEM_REFERENCE_INSTANTIATE(layer_norm_forward, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor,
                             float);
TANDEM_REFERENCE_INSTANTIATE(layer_norm_backward, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor,
                             Tensor, Tensor);
TANDEM_REFERENCE_INSTANTIATE(rms_norm_forward, Tensor, Tensor, Tensor, Tensor, float);
TANDEM_REFERENCE_INSTANTIATE(rms_norm_backward, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor);
TANDEM_REFERENCE_INSTANTIATE(qk_norm_forward, Tensor, Tensor, Tensor, Tensor, Tensor, int64_t,
                             int64_t, float);
TANDEM_REFERENCE_INSTANTIATE(qk_norm_backward, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor,
                             Tensor, Tensor, int64_t, int64_t);

}  // namespace tandem::backend::reference

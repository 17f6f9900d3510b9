// The cpu LayerNorm, RMSNorm and per-head q/k RMSNorm: OpenMP over rows, a vectorised loop per
// row. Parameter gradients are summed per fixed part of the rows (f32 within a part of at most
// a few hundred rows, double across parts), then added to dweight in part order.
#include <cmath>
#include <vector>

#include "backend/cpu/kernels.h"
#include "backend/cpu/parallel.h"
#include "backend/cpu/simd.h"

namespace tandem::backend::cpu {

namespace {

TANDEM_CPU_CLONES void layer_norm_row(float* y, float* mean_out, float* rstd_out, const float* x,
                                      const float* w, const float* b, int64_t C, float eps) {
    float sum = 0;
#pragma omp simd reduction(+ : sum)
    for (int64_t c = 0; c < C; ++c) sum += x[c];
    const float mean = sum / C;
    float var = 0;  // two passes: no cancellation from E[x^2] - E[x]^2
#pragma omp simd reduction(+ : var)
    for (int64_t c = 0; c < C; ++c) var += (x[c] - mean) * (x[c] - mean);
    const float rstd = 1.0f / std::sqrt(var / C + eps);
    for (int64_t c = 0; c < C; ++c) y[c] = (x[c] - mean) * rstd * w[c] + b[c];
    *mean_out = mean;
    *rstd_out = rstd;
}

// dx += rstd (g - mean(g) - xhat mean(g xhat)) with g = dy w; the row's share of dweight and
// dbias goes into the part's f32 sums dw, db.
TANDEM_CPU_CLONES void layer_norm_backward_row(float* dx, float* dw, float* db, const float* dy,
                                               const float* x, const float* w, float mean,
                                               float rstd, int64_t C) {
    float g_sum = 0, gx_sum = 0;
#pragma omp simd reduction(+ : g_sum, gx_sum)
    for (int64_t c = 0; c < C; ++c) {
        const float xhat = (x[c] - mean) * rstd;
        g_sum += dy[c] * w[c];
        gx_sum += dy[c] * w[c] * xhat;
    }
    const float g_mean = g_sum / C, gx_mean = gx_sum / C;
    for (int64_t c = 0; c < C; ++c) {
        const float xhat = (x[c] - mean) * rstd;
        dx[c] += rstd * (dy[c] * w[c] - g_mean - xhat * gx_mean);
        dw[c] += dy[c] * xhat;
        db[c] += dy[c];
    }
}

// y = x * rstd * w; returns rstd. y may alias x.
TANDEM_CPU_CLONES float rms_norm_row(float* y, const float* x, const float* w, int64_t C,
                                     float eps) {
    float ss = 0;
#pragma omp simd reduction(+ : ss)
    for (int64_t c = 0; c < C; ++c) ss += x[c] * x[c];
    const float rstd = 1.0f / std::sqrt(ss / C + eps);
    for (int64_t c = 0; c < C; ++c) y[c] = x[c] * rstd * w[c];
    return rstd;
}

// dx_j (+)= rstd dy_j w_j - rstd^3 x_j / C * sum_i dy_i w_i x_i; dw += dy x rstd.
// dx may alias dy when overwriting: the sum is taken before any dx is written.
TANDEM_CPU_CLONES void rms_norm_backward_row(float* dx, float* dw, const float* dy, const float* x,
                                             const float* w, float rstd, int64_t C,
                                             bool accumulate) {
    float dot = 0;
#pragma omp simd reduction(+ : dot)
    for (int64_t c = 0; c < C; ++c) dot += dy[c] * w[c] * x[c];
    const float k = rstd * rstd * rstd * dot / C;
    for (int64_t c = 0; c < C; ++c) dw[c] += dy[c] * x[c] * rstd;
    if (accumulate) {
        for (int64_t c = 0; c < C; ++c) dx[c] += rstd * dy[c] * w[c] - k * x[c];
    } else {
        for (int64_t c = 0; c < C; ++c) dx[c] = rstd * dy[c] * w[c] - k * x[c];
    }
}

// Adds the per-part sums partial[p][c] (parts x C, in part order, in double) to grad[c].
// An orphaned `omp for`: called inside the kernel's parallel region it shares that region (one
// fork/join per kernel instead of one per loop: tiny loops pay mostly for the fork and, on a
// busy machine, for waking a descheduled thread); its end is a barrier.
void add_parts(float* grad, const std::vector<float>& partial, int64_t parts, int64_t C) {
#pragma omp for schedule(static)
    for (int64_t c = 0; c < C; ++c) {
        double total = 0;
        for (int64_t p = 0; p < parts; ++p) total += partial[p * C + c];
        grad[c] = static_cast<float>(grad[c] + total);
    }
}

// Calls row(n, p) for every row n, part p taking rows part_of(N, parts, p): the reductions'
// first half, shared out inside the caller's parallel region; its end is a barrier, so every
// part is summed before add_parts reads it.
template <typename Row>
void rows_by_part(int64_t N, int64_t parts, Row row) {
#pragma omp for schedule(static)
    for (int64_t p = 0; p < parts; ++p) {
        const Range rows = part_of(N, parts, p);
        for (int64_t n = rows.begin; n < rows.end; ++n) row(n, p);
    }
}

}  // namespace

void layer_norm_forward(Tensor y, Tensor mean, Tensor rstd, Tensor x, Tensor weight, Tensor bias,
                        float eps) {
    const int64_t N = x.rows(), C = x.cols();
#pragma omp parallel for schedule(static) if (worth_threads(N * C))
    for (int64_t n = 0; n < N; ++n)
        layer_norm_row(y.as<float>() + n * C, mean.as<float>() + n, rstd.as<float>() + n,
                       x.as<float>() + n * C, weight.as<float>(), bias.as<float>(), C, eps);
}

void layer_norm_backward(Tensor dx, Tensor dweight, Tensor dbias, Tensor dy, Tensor x,
                         Tensor weight, Tensor mean, Tensor rstd) {
    const int64_t N = x.rows(), C = x.cols(), parts = reduction_parts(N);
    std::vector<float> dw(parts * C, 0.0f), db(parts * C, 0.0f);
#pragma omp parallel
    {
        rows_by_part(N, parts, [&](int64_t n, int64_t p) {
            layer_norm_backward_row(dx.as<float>() + n * C, dw.data() + p * C, db.data() + p * C,
                                    dy.as<float>() + n * C, x.as<float>() + n * C,
                                    weight.as<float>(), mean.as<float>()[n], rstd.as<float>()[n],
                                    C);
        });
        add_parts(dweight.as<float>(), dw, parts, C);
        add_parts(dbias.as<float>(), db, parts, C);
    }
}

void rms_norm_forward(Tensor y, Tensor rstd, Tensor x, Tensor weight, float eps) {
    const int64_t N = x.rows(), C = x.cols();
#pragma omp parallel for schedule(static) if (worth_threads(N * C))
    for (int64_t n = 0; n < N; ++n)
        rstd.as<float>()[n] =
            rms_norm_row(y.as<float>() + n * C, x.as<float>() + n * C, weight.as<float>(), C, eps);
}

void rms_norm_backward(Tensor dx, Tensor dweight, Tensor dy, Tensor x, Tensor weight, Tensor rstd) {
    const int64_t N = x.rows(), C = x.cols(), parts = reduction_parts(N);
    std::vector<float> dw(parts * C, 0.0f);
#pragma omp parallel
    {
        rows_by_part(N, parts, [&](int64_t n, int64_t p) {
            rms_norm_backward_row(dx.as<float>() + n * C, dw.data() + p * C, dy.as<float>() + n * C,
                                  x.as<float>() + n * C, weight.as<float>(), rstd.as<float>()[n], C,
                                  /*accumulate=*/true);
        });
        add_parts(dweight.as<float>(), dw, parts, C);
    }
}

void qk_norm_forward(Tensor y, Tensor rstd, Tensor qkv, Tensor q_weight, Tensor k_weight, int64_t H,
                     int64_t Hkv, float eps) {
    const int64_t rows = qkv.size(0) * qkv.size(1), W = qkv.size(2), D = W / (H + 2 * Hkv);
    const int64_t normed = (H + Hkv) * D;  // q and k heads; the v heads follow
#pragma omp parallel for schedule(static) if (worth_threads(rows * W))
    for (int64_t r = 0; r < rows; ++r) {
        const float* x = qkv.as<float>() + r * W;
        float* out = y.as<float>() + r * W;
        for (int64_t h = 0; h < H + Hkv; ++h)
            rstd.as<float>()[r * (H + Hkv) + h] =
                rms_norm_row(out + h * D, x + h * D,
                             h < H ? q_weight.as<float>() : k_weight.as<float>(), D, eps);
        if (out != x) std::copy(x + normed, x + W, out + normed);
    }
}

void qk_norm_backward(Tensor dqkv, Tensor dq_weight, Tensor dk_weight, Tensor dy, Tensor qkv,
                      Tensor q_weight, Tensor k_weight, Tensor rstd, int64_t H, int64_t Hkv) {
    const int64_t rows = qkv.size(0) * qkv.size(1), W = qkv.size(2), D = W / (H + 2 * Hkv);
    const int64_t normed = (H + Hkv) * D, parts = reduction_parts(rows);
    std::vector<float> dq(parts * D, 0.0f), dk(parts * D, 0.0f);
#pragma omp parallel
    {
        rows_by_part(rows, parts, [&](int64_t r, int64_t p) {
            const float* x = qkv.as<float>() + r * W;
            const float* g = dy.as<float>() + r * W;
            float* dx = dqkv.as<float>() + r * W;
            for (int64_t h = 0; h < H + Hkv; ++h) {
                const bool is_q = h < H;
                rms_norm_backward_row(dx + h * D, (is_q ? dq : dk).data() + p * D, g + h * D,
                                      x + h * D, is_q ? q_weight.as<float>() : k_weight.as<float>(),
                                      rstd.as<float>()[r * (H + Hkv) + h], D,
                                      /*accumulate=*/false);
            }
            if (dx != g) std::copy(g + normed, g + W, dx + normed);
        });
        add_parts(dq_weight.as<float>(), dq, parts, D);
        add_parts(dk_weight.as<float>(), dk, parts, D);
    }
}

}  // namespace tandem::backend::cpu

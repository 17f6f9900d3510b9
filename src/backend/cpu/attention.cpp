// The cpu rotary embedding and causal grouped-query attention.
// Attention never stores a T x T matrix: it takes each (batch, head)'s query rows a block at a
// time, computes the block's scores against the keys it can see into a per-thread scratch
// block, masks and normalises them (saving lse), and multiplies by V. The
// products run on tandem's AVX2 kernel against the head's keys and values packed once, or on
// OpenBLAS's sgemm (attention_products.h). Backward recomputes the probabilities from q, k and
// lse, block by block; the dK and dV of the query heads that share a kv head add up without
// atomics (see kMinKvTasks).
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "backend/cpu/attention_products.h"
#include "backend/cpu/kernels.h"
#include "backend/cpu/parallel.h"
#include "backend/cpu/simd.h"

namespace tandem::backend::cpu {

namespace {

// Backward runs one task per (batch, kv head) when there are at least this many of them (or no
// grouping); otherwise one per (batch, query head) with private dK/dV rows, so that a small
// batch of grouped-query attention still fills the cores. Fixed by shape, not by thread count:
// the result does not depend on the machine.
constexpr int64_t kMinKvTasks = 32;

// The product kernel of attention: tandem's AVX2 kernel when the cpu backend's products run on
// it, else OpenBLAS. (The AVX-512 kernel's 48-column tile would pad a head of 64 to 96 columns
// in three of the five products; it has not been measured, so AVX-512 keeps OpenBLAS.)
GemmKernel attention_kernel() {
    return gemm_kernel_chosen() == GemmKernel::avx2 ? GemmKernel::avx2 : GemmKernel::openblas;
}

// The heads, and the number of query rows per block. Each block computes its scores against
// every key up to its last row, so the masked half of its diagonal square is wasted: (block / T)
// of the work. Measured (docs/PERFORMANCE.md): OpenBLAS is faster with 128 rows at T = 1024 (the
// products' inner dimension for dK and dV doubles) and 64 at T = 256; tandem's kernel with 64
// at every length (32 to 64 level at T = 256, 128 slower at T = 1024). A 128 x 1024 block of
// f32 scores is 512 KiB, within L2.
struct Layout : HeadLayout {
    int64_t query_block;
};

Layout layout_of(Tensor qkv, int64_t H, int64_t Hkv, GemmKernel kernel) {
    const int64_t T = qkv.size(1), W = qkv.size(2);
    const int64_t block = kernel == GemmKernel::openblas && T >= 1024 ? 128 : 64;
    return {{qkv.size(0), T, H, Hkv, W / (H + 2 * Hkv), W}, block};
}

// Softmax of `scale` times the first `valid` scores of a row of `keys`, in place; the masked
// rest becomes 0. Returns the log-sum-exp of the valid scaled scores.
TANDEM_CPU_CLONES float softmax_row(float* s, float scale, int64_t valid, int64_t keys) {
    float mx = s[0];
#pragma omp simd reduction(max : mx)
    for (int64_t j = 0; j < valid; ++j) mx = s[j] > mx ? s[j] : mx;  // (std::max stays scalar)
    float sum = 0;
#pragma omp simd reduction(+ : sum)
    for (int64_t j = 0; j < valid; ++j) {
        s[j] = exp_approx((s[j] - mx) * scale);
        sum += s[j];
    }
    const float inv = 1.0f / sum;
    for (int64_t j = 0; j < valid; ++j) s[j] *= inv;
    for (int64_t j = valid; j < keys; ++j) s[j] = 0.0f;
    return mx * scale + std::log(sum);
}

// Probabilities from recomputed scores: p = exp(scale s - lse) on the valid part, 0 on the
// masked.
TANDEM_CPU_CLONES void probabilities_row(float* s, float scale, float lse, int64_t valid,
                                         int64_t keys) {
    for (int64_t j = 0; j < valid; ++j) s[j] = exp_approx(s[j] * scale - lse);
    for (int64_t j = valid; j < keys; ++j) s[j] = 0.0f;
}

// dS = P (dP - delta) * scale, in place in dp. delta = rowsum(P dP) = dout . out.
TANDEM_CPU_CLONES void score_grad_row(float* dp, const float* p, float delta, float scale,
                                      int64_t keys) {
    for (int64_t j = 0; j < keys; ++j) dp[j] = p[j] * (dp[j] - delta) * scale;
}

TANDEM_CPU_CLONES float dot(const float* a, const float* b, int64_t n) {
    float acc = 0;
#pragma omp simd reduction(+ : acc)
    for (int64_t i = 0; i < n; ++i) acc += a[i] * b[i];
    return acc;
}

// One pair rotation over every q and k head of a position: (x_i, x_{i+half}) by the angle
// whose cos and sin are given per i. inverse rotates by -angle.
TANDEM_CPU_CLONES void rotate_heads(float* x, const float* cos, const float* sin, int64_t heads,
                                    int64_t D, bool inverse) {
    const int64_t half = D / 2;
    const float sign = inverse ? -1.0f : 1.0f;
    for (int64_t h = 0; h < heads; ++h) {
        float* lo = x + h * D;
        float* hi = lo + half;
        for (int64_t i = 0; i < half; ++i) {
            const float x0 = lo[i], x1 = hi[i], s = sign * sin[i];
            lo[i] = x0 * cos[i] - x1 * s;
            hi[i] = x1 * cos[i] + x0 * s;
        }
    }
}

// The backward of one query head, block by block, with P the probabilities recomputed from
// q, k and lse, and scale = 1/sqrt(D):
// dV += P^T dO; dP = dO V^T; dS = P (dP - delta) scale; dQ = dS K; dK += dS^T Q.
// dQ goes to dqkv; dK and dV are added to rows of stride ld_kv. `products` has its kv head in
// use; p and dp: query_block x T.
struct HeadGrads {
    Layout L;
    const float *x, *dout, *out, *lse;
    float* dx;

    void head(HeadProducts& products, int64_t b, int64_t h, float* dk, float* dv, int64_t ld_kv,
              float* p, float* dp) const {
        const int64_t out_stride = L.H * L.D;
        const float scale = 1.0f / std::sqrt(static_cast<float>(L.D));
        for (int64_t t0 = 0; t0 < L.T; t0 += L.query_block) {
            const int64_t rows = std::min(L.query_block, L.T - t0), keys = t0 + rows;
            const float* q = x + L.q(b, t0, h);
            const float* go = dout + (b * L.T + t0) * out_stride + h * L.D;
            const float* o = out + (b * L.T + t0) * out_stride + h * L.D;
            const float* l = lse + (b * L.H + h) * L.T + t0;
            products.scores(q, rows, keys, p);
            for (int64_t i = 0; i < rows; ++i)
                probabilities_row(p + i * keys, scale, l[i], t0 + i + 1, keys);
            products.prob_grads(go, out_stride, rows, keys, dp);
            for (int64_t i = 0; i < rows; ++i) {
                const float delta = dot(go + i * out_stride, o + i * out_stride, L.D);
                score_grad_row(dp + i * keys, p + i * keys, delta, scale, keys);
            }
            products.value_grads(p, go, out_stride, rows, keys, dv, ld_kv);
            products.query_grads(dp, rows, keys, dx + L.q(b, t0, h));
            products.key_grads(dp, q, rows, keys, dk, ld_kv);
        }
    }
};

// dk, dv [D] = the sum over `heads` partial rows [dk | dv] that lie `stride` apart, in order.
TANDEM_CPU_CLONES void sum_group(float* dk, float* dv, const float* partial, int64_t heads,
                                 int64_t stride, int64_t D) {
    for (int64_t d = 0; d < D; ++d) {
        dk[d] = partial[d];
        dv[d] = partial[D + d];
    }
    for (int64_t i = 1; i < heads; ++i)
        for (int64_t d = 0; d < D; ++d) {
            dk[d] += partial[i * stride + d];
            dv[d] += partial[i * stride + D + d];
        }
}

}  // namespace

void rope(Tensor qkv, int64_t H, int64_t Hkv, const RopeParams& params, int64_t pos_offset,
          bool inverse) {
    const Layout L = layout_of(qkv, H, Hkv, GemmKernel::openblas);  // (no products)
    const int64_t half = L.D / 2;
    // Angles in double, cos and sin rounded once: at position 1e5 an f32 angle would be off by
    // up to 4e-3 radians (half its ulp) before any cos is taken.
    std::vector<double> inv_freq(half);
    for (int64_t i = 0; i < half; ++i) inv_freq[i] = params.inv_freq(i, L.D);
    std::vector<float> cos(L.T * half), sin(L.T * half);
#pragma omp parallel for schedule(static)
    for (int64_t t = 0; t < L.T; ++t)
        for (int64_t i = 0; i < half; ++i) {
            const double angle = double(pos_offset + t) * inv_freq[i];
            cos[t * half + i] = static_cast<float>(std::cos(angle));
            sin[t * half + i] = static_cast<float>(std::sin(angle));
        }
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < L.B * L.T; ++r) {
        const int64_t t = r % L.T;
        rotate_heads(qkv.as<float>() + r * L.W, cos.data() + t * half, sin.data() + t * half,
                     H + Hkv, L.D, inverse);
    }
}

void rope_at(Tensor qkv, Tensor positions, int64_t H, int64_t Hkv, const RopeParams& params) {
    const int64_t N = qkv.size(0), W = qkv.size(1), D = W / (H + 2 * Hkv), half = D / 2;
    std::vector<double> inv_freq(half);
    for (int64_t i = 0; i < half; ++i) inv_freq[i] = params.inv_freq(i, D);
    // Each row its own angles (rows of one step are at unrelated positions), in double as above.
#pragma omp parallel if (worth_threads(N * W))
    {
        std::vector<float> cos(half), sin(half);
#pragma omp for schedule(static)
        for (int64_t n = 0; n < N; ++n) {
            const double pos = positions.as<int32_t>()[n];
            for (int64_t i = 0; i < half; ++i) {
                cos[i] = static_cast<float>(std::cos(pos * inv_freq[i]));
                sin[i] = static_cast<float>(std::sin(pos * inv_freq[i]));
            }
            rotate_heads(qkv.as<float>() + n * W, cos.data(), sin.data(), H + Hkv, D, false);
        }
    }
}

void attention_forward_on(GemmKernel kernel, Tensor out, Tensor lse, Tensor qkv, int64_t H,
                          int64_t Hkv) {
    const Layout L = layout_of(qkv, H, Hkv, kernel);
    const float scale = 1.0f / std::sqrt(static_cast<float>(L.D));
    const float* x = qkv.as<float>();
    const int64_t out_stride = H * L.D;
#pragma omp parallel
    {
        HeadProducts products(L, x, kernel, /*backward=*/false);  // once per thread and call
        std::vector<float> scores(L.query_block * L.T);
        // One task per block of query rows, a head's blocks in a row and its last (most keys)
        // first. Threads take whole heads at a time when there are enough for every thread
        // several times over (each head then packed once), shorter runs of blocks when there
        // are not, so that a single head still spreads over the cores; a thread packs a head
        // when its next block moves to another one. (Each block's result is the same whoever
        // computes it.)
        const int64_t n_blocks = ceil_div(L.T, L.query_block), tasks = L.B * H * n_blocks;
        const int64_t run = std::clamp<int64_t>(tasks / (4 * omp_get_num_threads()), 1, n_blocks);
#pragma omp for schedule(dynamic, run)
        for (int64_t task = 0; task < tasks; ++task) {
            const int64_t head = task / n_blocks, block = n_blocks - 1 - task % n_blocks;
            const int64_t b = head / H, h = head % H;
            products.use_head(b, h / L.group());
            const int64_t t0 = block * L.query_block, rows = std::min(L.query_block, L.T - t0);
            const int64_t keys = t0 + rows;  // causal: this block sees keys [0, keys)
            products.scores(x + L.q(b, t0, h), rows, keys, scores.data());
            float* l = lse.as<float>() + (b * H + h) * L.T + t0;
            for (int64_t i = 0; i < rows; ++i)
                l[i] = softmax_row(scores.data() + i * keys, scale, t0 + i + 1, keys);
            products.values(scores.data(), rows, keys,
                            out.as<float>() + (b * L.T + t0) * out_stride + h * L.D, out_stride);
        }
    }
}

void attention_forward(Tensor out, Tensor lse, Tensor qkv, int64_t H, int64_t Hkv) {
    attention_forward_on(attention_kernel(), out, lse, qkv, H, Hkv);
}

void attention_backward_on(GemmKernel kernel, Tensor dqkv, Tensor dout, Tensor qkv, Tensor out,
                           Tensor lse, int64_t H, int64_t Hkv) {
    const Layout L = layout_of(qkv, H, Hkv, kernel);
    float* dx = dqkv.as<float>();
    const HeadGrads grads{L, qkv.as<float>(), dout.as<float>(), out.as<float>(), lse.as<float>(),
                          dx};
    if (L.group() == 1 || L.B * Hkv >= kMinKvTasks) {
        // One task per (batch, kv head): its query heads add into dK and dV in dqkv directly.
#pragma omp parallel
        {
            HeadProducts products(L, qkv.as<float>(), kernel, /*backward=*/true);  // per thread
            std::vector<float> p(L.query_block * L.T), dp(L.query_block * L.T);
#pragma omp for schedule(dynamic)
            for (int64_t task = 0; task < L.B * Hkv; ++task) {
                const int64_t b = task / Hkv, g = task % Hkv;
                products.use_head(b, g);
                for (int64_t t = 0; t < L.T; ++t) {  // dK and dV are sums: start at 0
                    std::fill_n(dx + L.k(b, t, g), L.D, 0.0f);
                    std::fill_n(dx + L.v(b, t, g), L.D, 0.0f);
                }
                for (int64_t h = g * L.group(); h < (g + 1) * L.group(); ++h)
                    grads.head(products, b, h, dx + L.k(b, 0, g), dx + L.v(b, 0, g), L.W, p.data(),
                               dp.data());
            }
        }
        return;
    }
    // Few kv heads: one task per (batch, query head), each with its own dK and dV rows
    // [T, 2D], summed over the group afterwards in head order.
    std::vector<float> partial(L.B * H * L.T * 2 * L.D, 0.0f);
#pragma omp parallel
    {
        HeadProducts products(L, qkv.as<float>(), kernel, /*backward=*/true);  // per thread
        std::vector<float> p(L.query_block * L.T), dp(L.query_block * L.T);
#pragma omp for schedule(dynamic)
        for (int64_t task = 0; task < L.B * H; ++task) {
            const int64_t b = task / H, h = task % H;
            products.use_head(b, h / L.group());
            float* own = partial.data() + task * L.T * 2 * L.D;
            grads.head(products, b, h, own, own + L.D, 2 * L.D, p.data(), dp.data());
        }
    }
#pragma omp parallel for schedule(static)
    for (int64_t row = 0; row < L.B * Hkv * L.T; ++row) {
        const int64_t t = row % L.T, g = (row / L.T) % Hkv, b = row / (L.T * Hkv);
        sum_group(dx + L.k(b, t, g), dx + L.v(b, t, g),
                  partial.data() + ((b * H + g * L.group()) * L.T + t) * 2 * L.D, L.group(),
                  L.T * 2 * L.D, L.D);
    }
}

void attention_backward(Tensor dqkv, Tensor dout, Tensor qkv, Tensor out, Tensor lse, int64_t H,
                        int64_t Hkv) {
    attention_backward_on(attention_kernel(), dqkv, dout, qkv, out, lse, H, Hkv);
}

}  // namespace tandem::backend::cpu

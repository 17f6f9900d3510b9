// The cpu GELU (tanh approximation) and SwiGLU, vectorised through exp_approx.
// GELU is written with 1 + tanh(u) = 2 sigmoid(2u), which avoids tanh's cancellation near 0.
#include "backend/cpu/kernels.h"
#include "backend/cpu/parallel.h"
#include "backend/cpu/simd.h"

namespace tandem::backend::cpu {

namespace {

constexpr float kGeluScale = 0.7978845608028654f;  // sqrt(2 / pi)
constexpr float kGeluCubic = 0.044715f;

TANDEM_CPU_CLONES void gelu_run(float* y, const float* x, int64_t n) {
    for (int64_t i = 0; i < n; ++i) {
        const float v = x[i];
        const float u = kGeluScale * (v + kGeluCubic * v * v * v);
        y[i] = v * sigmoid_approx(2.0f * u);
    }
}

// With s = sigmoid(2u): y = x s, dy/dx = s + x * 2 s (1 - s) du/dx. dx may alias dy.
TANDEM_CPU_CLONES void gelu_backward_run(float* dx, const float* dy, const float* x, int64_t n) {
    for (int64_t i = 0; i < n; ++i) {
        const float v = x[i];
        const float u = kGeluScale * (v + kGeluCubic * v * v * v);
        const float du = kGeluScale * (1.0f + 3.0f * kGeluCubic * v * v);
        const float s = sigmoid_approx(2.0f * u);
        dx[i] = dy[i] * (s + 2.0f * v * s * (1.0f - s) * du);
    }
}

TANDEM_CPU_CLONES void swiglu_row(float* y, const float* gate, const float* up, int64_t F) {
    for (int64_t f = 0; f < F; ++f) y[f] = gate[f] * sigmoid_approx(gate[f]) * up[f];
}

// silu'(g) = sig(g) (1 + g (1 - sig(g))).
TANDEM_CPU_CLONES void swiglu_backward_row(float* dgate, float* dup, const float* dy,
                                           const float* gate, const float* up, int64_t F) {
    for (int64_t f = 0; f < F; ++f) {
        const float g = gate[f], sg = sigmoid_approx(g);
        dgate[f] = dy[f] * up[f] * sg * (1.0f + g * (1.0f - sg));
        dup[f] = dy[f] * g * sg;
    }
}

}  // namespace

void gelu_forward(Tensor y, Tensor x) {
    const int64_t n = x.numel();
#pragma omp parallel for schedule(static) if (worth_threads(n))
    for (int64_t begin = 0; begin < n; begin += kElementsPerTask)
        gelu_run(y.as<float>() + begin, x.as<float>() + begin,
                 std::min(kElementsPerTask, n - begin));
}

void gelu_backward(Tensor dx, Tensor dy, Tensor x) {
    const int64_t n = x.numel();
#pragma omp parallel for schedule(static)
    for (int64_t begin = 0; begin < n; begin += kElementsPerTask)
        gelu_backward_run(dx.as<float>() + begin, dy.as<float>() + begin, x.as<float>() + begin,
                          std::min(kElementsPerTask, n - begin));
}

void swiglu_forward(Tensor y, Tensor gate_up) {
    const int64_t N = y.rows(), F = y.cols();
    const float* gu = gate_up.as<float>();
#pragma omp parallel for schedule(static) if (worth_threads(N * F))
    for (int64_t n = 0; n < N; ++n)
        swiglu_row(y.as<float>() + n * F, gu + n * 2 * F, gu + n * 2 * F + F, F);
}

void swiglu_backward(Tensor dgate_up, Tensor dy, Tensor gate_up) {
    const int64_t N = dy.rows(), F = dy.cols();
    const float* gu = gate_up.as<float>();
    float* dgu = dgate_up.as<float>();
#pragma omp parallel for schedule(static)
    for (int64_t n = 0; n < N; ++n)
        swiglu_backward_row(dgu + n * 2 * F, dgu + n * 2 * F + F, dy.as<float>() + n * F,
                            gu + n * 2 * F, gu + n * 2 * F + F, F);
}

}  // namespace tandem::backend::cpu

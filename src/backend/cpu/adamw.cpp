// The cpu AdamW step: one vectorised pass over the flat parameter span, in f32 with the
// step-dependent constants computed once in double.
#include <cmath>

#include "backend/cpu/kernels.h"
#include "backend/cpu/parallel.h"
#include "backend/cpu/simd.h"

namespace tandem::backend::cpu {

namespace {

struct AdamWConstants {
    float decay;         // 1 - lr * weight_decay
    float beta1, beta2;  // moment decay rates
    float one_minus_b1, one_minus_b2;
    float step_size;       // lr / (1 - beta1^step)
    float inv_bias2_sqrt;  // 1 / sqrt(1 - beta2^step)
    float eps;
    float grad_scale;  // clipping's coefficient
};

// The four spans never overlap (omp simd). The vector sqrt needs -fno-math-errno (CMakeLists).
TANDEM_CPU_CLONES void adamw_run(float* param, const float* grad, float* m, float* v,
                                 const AdamWConstants k, int64_t n) {
#pragma omp simd
    for (int64_t i = 0; i < n; ++i) {
        const float g = grad[i] * k.grad_scale;
        const float mi = k.beta1 * m[i] + k.one_minus_b1 * g;
        const float vi = k.beta2 * v[i] + k.one_minus_b2 * g * g;
        m[i] = mi;
        v[i] = vi;
        param[i] =
            param[i] * k.decay - k.step_size * mi / (std::sqrt(vi) * k.inv_bias2_sqrt + k.eps);
    }
}

}  // namespace

void adamw_update(Tensor param, Tensor grad, Tensor m, Tensor v, const AdamWParams& hp) {
    const double step = static_cast<double>(hp.step);
    const AdamWConstants k{
        static_cast<float>(1.0 - double(hp.lr) * hp.weight_decay),
        hp.beta1,
        hp.beta2,
        static_cast<float>(1.0 - double(hp.beta1)),
        static_cast<float>(1.0 - double(hp.beta2)),
        static_cast<float>(hp.lr / (1.0 - std::pow(double(hp.beta1), step))),
        static_cast<float>(1.0 / std::sqrt(1.0 - std::pow(double(hp.beta2), step))),
        hp.eps,
        hp.grad_scale,
    };
    const int64_t n = param.numel();
#pragma omp parallel for schedule(static)
    for (int64_t begin = 0; begin < n; begin += kElementsPerTask)
        adamw_run(param.as<float>() + begin, grad.as<float>() + begin, m.as<float>() + begin,
                  v.as<float>() + begin, k, std::min(kElementsPerTask, n - begin));
}

}  // namespace tandem::backend::cpu

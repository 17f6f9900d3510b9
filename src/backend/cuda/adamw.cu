// AdamW over one flat span in a single launch, in PyTorch's order of operations. The parameter
// is f32 or bf16 (with a gradient of the same dtype); the moments m and v are always f32.
#include <cmath>

#include "backend/cuda/common.cuh"

namespace tandem::backend::cuda {

namespace {

template <typename T>
__global__ void adamw_kernel(T* param, const T* grad, float* m, float* v, int64_t n, float lr,
                             float beta1, float beta2, float eps, float decay, float step_size,
                             float bias2_sqrt, float grad_scale) {
    for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
         i += int64_t(gridDim.x) * blockDim.x) {
        const float g = to_f32(grad[i]) * grad_scale;
        float p = to_f32(param[i]) * (1.0f - lr * decay);
        const float mi = beta1 * m[i] + (1.0f - beta1) * g;
        const float vi = beta2 * v[i] + (1.0f - beta2) * g * g;
        p -= step_size * mi / (sqrtf(vi) / bias2_sqrt + eps);
        m[i] = mi;
        v[i] = vi;
        param[i] = from_f32<T>(p);
    }
}

}  // namespace

void adamw_update(Context& ctx, Tensor param, Tensor grad, Tensor m, Tensor v,
                  const AdamWParams& hp) {
    checks::adamw(param, grad, m, v, hp);
    expect_compute_dtype(param);
    const int64_t n = param.numel();
    if (n == 0) return;
    // The bias corrections in double on the host, as the reference does, then one f32 each.
    const double bias1 = 1.0 - std::pow(double(hp.beta1), double(hp.step));
    const double bias2 = 1.0 - std::pow(double(hp.beta2), double(hp.step));
    const float step_size = float(double(hp.lr) / bias1);
    const float bias2_sqrt = float(std::sqrt(bias2));
    dispatch(param.dtype, [&](auto tag) {
        using T = decltype(tag);
        adamw_kernel<T><<<n_blocks_for(n, 256), 256, 0, ctx.stream>>>(
            param.as<T>(), grad.as<T>(), m.as<float>(), v.as<float>(), n, hp.lr, hp.beta1,
            hp.beta2, hp.eps, hp.weight_decay, step_size, bias2_sqrt, hp.grad_scale);
    });
    TANDEM_CUDA_CHECK_LAUNCH();
}

}  // namespace tandem::backend::cuda

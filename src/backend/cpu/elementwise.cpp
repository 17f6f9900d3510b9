// The residual add, in-place scale, zero fill, and the sums of the cpu backend. Sums are accumulated in
// double per fixed-size part and the parts added in order, so they do not depend on threads.
#include <cstring>
#include <vector>

#include "backend/cpu/kernels.h"
#include "backend/cpu/parallel.h"
#include "backend/cpu/simd.h"

namespace tandem::backend::cpu {

namespace {

// out may alias a or b: each element is read before it is written.
TANDEM_CPU_CLONES void add_run(float* out, const float* a, const float* b, int64_t n) {
    for (int64_t i = 0; i < n; ++i) out[i] = a[i] + b[i];
}

TANDEM_CPU_CLONES void scale_run(float* x, float s, int64_t n) {
    for (int64_t i = 0; i < n; ++i) x[i] *= s;
}

TANDEM_CPU_CLONES double sum_run(const float* x, int64_t n) {
    double acc = 0;
#pragma omp simd reduction(+ : acc)
    for (int64_t i = 0; i < n; ++i) acc += double(x[i]);
    return acc;
}

TANDEM_CPU_CLONES double sum_squares_run(const float* x, int64_t n) {
    double acc = 0;
#pragma omp simd reduction(+ : acc)
    for (int64_t i = 0; i < n; ++i) acc += double(x[i]) * double(x[i]);
    return acc;
}

template <typename RunSum>
double sum_in_parts(const float* x, int64_t n, RunSum run_sum) {
    const int64_t parts = ceil_div(n, kElementsPerTask);
    std::vector<double> partial(parts);
#pragma omp parallel for schedule(static)
    for (int64_t p = 0; p < parts; ++p) {
        const int64_t begin = p * kElementsPerTask;
        partial[p] = run_sum(x + begin, std::min(kElementsPerTask, n - begin));
    }
    double total = 0;
    for (double s : partial) total += s;
    return total;
}

}  // namespace

void fill_zero(Tensor x) {
    // Both cores: zeroing the gradients (124 M floats for GPT-2 small) is bound by one core's
    // store bandwidth when memset runs alone, not by the memory's.
    auto* bytes = static_cast<unsigned char*>(x.data);
    const int64_t n = static_cast<int64_t>(x.bytes()), chunk = 4 * kElementsPerTask * 16;
#pragma omp parallel for schedule(static)
    for (int64_t begin = 0; begin < n; begin += chunk)
        std::memset(bytes + begin, 0, std::min(chunk, n - begin));
}

void add(Tensor out, Tensor a, Tensor b) {
    const int64_t n = out.numel();
#pragma omp parallel for schedule(static)
    for (int64_t begin = 0; begin < n; begin += kElementsPerTask)
        add_run(out.as<float>() + begin, a.as<float>() + begin, b.as<float>() + begin,
                std::min(kElementsPerTask, n - begin));
}

void scale(Tensor x, float s) {
    const int64_t n = x.numel();
#pragma omp parallel for schedule(static)
    for (int64_t begin = 0; begin < n; begin += kElementsPerTask)
        scale_run(x.as<float>() + begin, s, std::min(kElementsPerTask, n - begin));
}

double sum(Tensor x) {
    return sum_in_parts(x.as<float>(), x.numel(), sum_run);
}
double sum_squares(Tensor x) {
    return sum_in_parts(x.as<float>(), x.numel(), sum_squares_run);
}

}  // namespace tandem::backend::cpu

// Reference matrix products: the triple loop, each dot product accumulated in double.
#include <vector>

#include "backend/reference/kernels.h"

namespace tandem::backend::reference {

template <typename Real>
void matmul(Tensor out, Tensor a, Tensor b, Tensor bias, bool trans_a, bool trans_b,
            bool accumulate) {
    const bool batched = out.ndim() == 3;
    const int64_t S = batched ? out.size(0) : 1, M = out.size(-2), N = out.size(-1);
    const int64_t K = trans_a ? a.size(-2) : a.size(-1);
    for (int64_t s = 0; s < S; ++s) {
        const Real* A = a.as<Real>() + s * M * K;
        const Real* Bm = b.as<Real>() + s * K * N;
        Real* O = out.as<Real>() + s * M * N;
        for (int64_t m = 0; m < M; ++m)
            for (int64_t n = 0; n < N; ++n) {
                double acc = bias.empty() ? 0.0 : double(bias.as<Real>()[n]);
                for (int64_t k = 0; k < K; ++k) {
                    const double av = trans_a ? A[k * M + m] : A[m * K + k];
                    const double bv = trans_b ? Bm[n * K + k] : Bm[k * N + n];
                    acc += av * bv;
                }
                Real& o = O[m * N + n];
                o = static_cast<Real>(accumulate ? o + acc : acc);
            }
    }
}

template <typename Real>
void bias_backward(Tensor dbias, Tensor dout) {
    const int64_t M = dout.rows(), N = dout.cols();
    std::vector<double> acc(N);
    for (int64_t m = 0; m < M; ++m)
        for (int64_t n = 0; n < N; ++n) acc[n] += dout.as<Real>()[m * N + n];
    for (int64_t n = 0; n < N; ++n)
        dbias.as<Real>()[n] = static_cast<Real>(dbias.as<Real>()[n] + acc[n]);
}

TANDEM_REFERENCE_INSTANTIATE(matmul, Tensor, Tensor, Tensor, Tensor, bool, bool, bool);
TANDEM_REFERENCE_INSTANTIATE(bias_backward, Tensor, Tensor);

}  // namespace tandem::backend::reference

// Reference product with a weight in its storage dtype: each stored row dequantised exactly
// (every storage dtype's values are f32 numbers) and the products accumulated in double.
#include <vector>

#include "backend/reference/kernels.h"
#include "core/quant.h"

namespace tandem::backend::reference {

template <typename Real>
void matmul_weights(Tensor out, Tensor x, Tensor w, Tensor bias, bool w_is_in_out) {
    const int64_t N = out.rows(), O = out.cols(), K = x.cols();
    const int64_t rows = w.size(0), cols = w.size(1);  // as stored: [O, K] or [K, O]
    const size_t row_bytes = dtype_bytes(w.dtype, cols);
    std::vector<double> acc(N * O);
    for (int64_t n = 0; n < N; ++n)
        for (int64_t o = 0; o < O; ++o) acc[n * O + o] = bias.empty() ? 0.0 : bias.as<Real>()[o];
    std::vector<float> row(cols);
    for (int64_t r = 0; r < rows; ++r) {
        convert_values(row.data(), DType::F32, w.as<char>() + r * row_bytes, w.dtype, cols);
        for (int64_t n = 0; n < N; ++n) {
            const Real* xn = x.as<Real>() + n * K;
            if (w_is_in_out) {  // row r is input k = r: out[n, :] += x[n, r] * row
                for (int64_t o = 0; o < O; ++o) acc[n * O + o] += double(xn[r]) * row[o];
            } else {  // row r is output o = r: out[n, r] = x[n, :] . row
                double dot = 0;
                for (int64_t k = 0; k < K; ++k) dot += double(xn[k]) * row[k];
                acc[n * O + r] += dot;
            }
        }
    }
    for (int64_t i = 0; i < N * O; ++i) out.as<Real>()[i] = static_cast<Real>(acc[i]);
}

TANDEM_REFERENCE_INSTANTIATE(matmul_weights, Tensor, Tensor, Tensor, Tensor, bool);

}  // namespace tandem::backend::reference

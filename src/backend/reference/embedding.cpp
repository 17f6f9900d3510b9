// Reference token and position embeddings. Backward groups positions by token so that each
// gradient row is one double sum (over its positions in order) added once.
#include <algorithm>
#include <numeric>
#include <vector>

#include "backend/reference/kernels.h"
#include "core/quant.h"

namespace tandem::backend::reference {

template <typename Real>
void embedding_forward(Tensor out, Tensor tokens, Tensor wte, Tensor wpe, int64_t pos_offset) {
    const int64_t B = out.size(0), T = out.size(1), C = out.size(2), V = wte.size(0);
    const int32_t* tok = tokens.as<int32_t>();
    std::vector<Real> e(C), p(C, Real(0));
    for (int64_t b = 0; b < B; ++b)
        for (int64_t t = 0; t < T; ++t) {
            const int32_t id = tok[b * T + t];
            TANDEM_ASSERT(id >= 0 && id < V, id, V);
            // Rows widened from the tables' dtypes (a copy when they are the compute dtype).
            convert_values(e.data(), out.dtype, wte.as<char>() + dtype_bytes(wte.dtype, id * C),
                           wte.dtype, C);
            if (!wpe.empty())
                convert_values(p.data(), out.dtype,
                               wpe.as<char>() + dtype_bytes(wpe.dtype, (pos_offset + t) * C),
                               wpe.dtype, C);
            Real* o = out.as<Real>() + (b * T + t) * C;
            for (int64_t c = 0; c < C; ++c) o[c] = e[c] + p[c];
        }
}

// Rows of a table in any storage dtype, converted row by row (a q8_0 row is whole blocks).
template <typename Real>
void embedding_at_forward(Tensor out, Tensor tokens, Tensor positions, Tensor wte, Tensor wpe) {
    const int64_t N = out.size(0), C = out.size(1);
    const DType real = out.dtype;
    const auto row_of = [C](const Tensor& table, int64_t i) {
        return static_cast<const char*>(table.data) + dtype_bytes(table.dtype, C) * i;
    };
    std::vector<Real> p(C);
    for (int64_t n = 0; n < N; ++n) {
        Real* o = out.as<Real>() + n * C;
        convert_values(o, real, row_of(wte, tokens.as<int32_t>()[n]), wte.dtype, C);
        if (wpe.empty()) continue;
        convert_values(p.data(), real, row_of(wpe, positions.as<int32_t>()[n]), wpe.dtype, C);
        for (int64_t c = 0; c < C; ++c) o[c] += p[c];
    }
}

template <typename Real>
void embedding_backward(Tensor dwte, Tensor dwpe, Tensor dout, Tensor tokens) {
    const int64_t B = dout.size(0), T = dout.size(1), C = dout.size(2), V = dwte.size(0);
    const int32_t* tok = tokens.as<int32_t>();
    const Real* g = dout.as<Real>();

    // Positions sorted by token (stable: each token's positions stay in order).
    std::vector<int64_t> order(B * T);
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(),
                     [&](int64_t i, int64_t j) { return tok[i] < tok[j]; });
    std::vector<double> acc(C);
    for (size_t first = 0; first < order.size();) {
        const int32_t id = tok[order[first]];
        TANDEM_ASSERT(id >= 0 && id < V, id, V);
        std::fill(acc.begin(), acc.end(), 0.0);
        size_t last = first;
        for (; last < order.size() && tok[order[last]] == id; ++last)
            for (int64_t c = 0; c < C; ++c) acc[c] += g[order[last] * C + c];
        Real* row = dwte.as<Real>() + id * C;
        for (int64_t c = 0; c < C; ++c) row[c] = static_cast<Real>(row[c] + acc[c]);
        first = last;
    }

    if (dwpe.empty()) return;
    for (int64_t t = 0; t < T; ++t) {
        std::fill(acc.begin(), acc.end(), 0.0);
        for (int64_t b = 0; b < B; ++b)
            for (int64_t c = 0; c < C; ++c) acc[c] += g[(b * T + t) * C + c];
        Real* row = dwpe.as<Real>() + t * C;
        for (int64_t c = 0; c < C; ++c) row[c] = static_cast<Real>(row[c] + acc[c]);
    }
}

TANDEM_REFERENCE_INSTANTIATE(embedding_forward, Tensor, Tensor, Tensor, Tensor, int64_t);
TANDEM_REFERENCE_INSTANTIATE(embedding_at_forward, Tensor, Tensor, Tensor, Tensor, Tensor);
TANDEM_REFERENCE_INSTANTIATE(embedding_backward, Tensor, Tensor, Tensor, Tensor);

}  // namespace tandem::backend::reference

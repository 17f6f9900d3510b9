// The cpu token and position embeddings. Backward groups positions by token with a counting
// sort, so that each thread owns whole rows of dwte (no atomics, and each row adds its positions
// in order: deterministic).
#include <algorithm>
#include <vector>

#include "backend/cpu/kernels.h"
#include "backend/cpu/parallel.h"
#include "backend/cpu/simd.h"
#include "core/quant.h"

namespace tandem::backend::cpu {

namespace {

TANDEM_CPU_CLONES void sum_rows(float* out, const float* a, const float* b, int64_t C) {
    for (int64_t c = 0; c < C; ++c) out[c] = a[c] + b[c];
}

TANDEM_CPU_CLONES void add_row(float* acc, const float* row, int64_t C) {
    for (int64_t c = 0; c < C; ++c) acc[c] += row[c];
}

}  // namespace

void embedding_forward(Tensor out, Tensor tokens, Tensor wte, Tensor wpe, int64_t pos_offset) {
    const int64_t T = out.size(1), C = out.size(2), rows = out.size(0) * T;
    const int32_t* tok = tokens.as<int32_t>();
    if (wte.dtype != DType::F32 || (!wpe.empty() && wpe.dtype != DType::F32)) {
        // Tables in a storage dtype (inference): each row widened, rows of the thread's own.
#pragma omp parallel if (worth_threads(rows * C))
        {
            std::vector<float> e(C), p(C, 0.0f);
#pragma omp for schedule(static)
            for (int64_t r = 0; r < rows; ++r) {
                convert_values(e.data(), DType::F32,
                               wte.as<char>() + dtype_bytes(wte.dtype, tok[r] * C), wte.dtype, C);
                if (!wpe.empty())
                    convert_values(p.data(), DType::F32,
                                   wpe.as<char>() + dtype_bytes(wpe.dtype, (pos_offset + r % T) * C),
                                   wpe.dtype, C);
                sum_rows(out.as<float>() + r * C, e.data(), p.data(), C);
            }
        }
        return;
    }
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < rows; ++r) {
        const float* e = wte.as<float>() + tok[r] * C;
        float* o = out.as<float>() + r * C;
        if (wpe.empty())
            std::copy(e, e + C, o);
        else
            sum_rows(o, e, wpe.as<float>() + (pos_offset + r % T) * C, C);
    }
}

// Tables in any storage dtype: each row converted on its own (a q8_0 row is whole blocks), the
// position row through a per-thread buffer.
void embedding_at_forward(Tensor out, Tensor tokens, Tensor positions, Tensor wte, Tensor wpe) {
    const int64_t N = out.size(0), C = out.size(1);
    const auto row_of = [C](const Tensor& table, int64_t i) {
        return static_cast<const char*>(table.data) + dtype_bytes(table.dtype, C) * i;
    };
#pragma omp parallel
    {
        std::vector<float> p(wpe.empty() ? 0 : C);
#pragma omp for schedule(static)
        for (int64_t n = 0; n < N; ++n) {
            float* o = out.as<float>() + n * C;
            convert_values(o, DType::F32, row_of(wte, tokens.as<int32_t>()[n]), wte.dtype, C);
            if (wpe.empty()) continue;
            convert_values(p.data(), DType::F32, row_of(wpe, positions.as<int32_t>()[n]),
                           wpe.dtype, C);
            sum_rows(o, o, p.data(), C);
        }
    }
}

void embedding_backward(Tensor dwte, Tensor dwpe, Tensor dout, Tensor tokens) {
    const int64_t B = dout.size(0), T = dout.size(1), C = dout.size(2), V = dwte.size(0);
    const int64_t rows = B * T;
    const int32_t* tok = tokens.as<int32_t>();
    const float* g = dout.as<float>();

    // Counting sort of positions by token: positions of token v are order[first[v], first[v+1]).
    std::vector<int64_t> first(V + 1, 0), order(rows);
    for (int64_t r = 0; r < rows; ++r) ++first[tok[r] + 1];
    for (int64_t v = 0; v < V; ++v) first[v + 1] += first[v];
    std::vector<int64_t> next(first.begin(), first.end() - 1);
    for (int64_t r = 0; r < rows; ++r) order[next[tok[r]]++] = r;
    std::vector<int32_t> used;  // the distinct tokens, in increasing order
    for (int64_t v = 0; v < V; ++v)
        if (first[v + 1] > first[v]) used.push_back(static_cast<int32_t>(v));

    const int64_t n_used = static_cast<int64_t>(used.size());
#pragma omp parallel for schedule(dynamic, 16)
    for (int64_t i = 0; i < n_used; ++i) {
        const int32_t v = used[i];
        for (int64_t j = first[v]; j < first[v + 1]; ++j)
            add_row(dwte.as<float>() + v * C, g + order[j] * C, C);
    }

    if (dwpe.empty()) return;
#pragma omp parallel for schedule(static)
    for (int64_t t = 0; t < T; ++t)
        for (int64_t b = 0; b < B; ++b) add_row(dwpe.as<float>() + t * C, g + (b * T + t) * C, C);
}

}  // namespace tandem::backend::cpu

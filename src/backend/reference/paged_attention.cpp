// Reference paged key/value cache: the write puts each row's k and v heads in its page slot, and
// attention reads one query head at a time through the page table, scores in double over every
// position its row may see. The cache dtype (f32, f16, f64) is converted value by value.
#include <cmath>
#include <vector>

#include "backend/reference/kernels.h"

namespace tandem::backend::reference {

namespace {

double load(const Tensor& cache, int64_t i) {
    switch (cache.dtype) {
        case DType::F32: return cache.as<float>()[i];
        case DType::F64: return cache.as<double>()[i];
        case DType::F16: return f32_from_f16(cache.as<uint16_t>()[i]);
        default: TANDEM_ASSERT(false, "kv cache dtype", dtype_name(cache.dtype));
    }
}

void store(const Tensor& cache, int64_t i, double x) {
    switch (cache.dtype) {
        case DType::F32: cache.as<float>()[i] = static_cast<float>(x); return;
        case DType::F64: cache.as<double>()[i] = x; return;
        case DType::F16: cache.as<uint16_t>()[i] = f16_from_f32(static_cast<float>(x)); return;
        default: TANDEM_ASSERT(false, "kv cache dtype", dtype_name(cache.dtype));
    }
}

// Where position `pos` of row n's sequence starts in a page tensor (in elements).
struct PageIndex {
    const int32_t *table, *seq_index;
    int64_t pages_per_seq, page_size, KV;
    int64_t at(int64_t n, int64_t pos) const {
        const int64_t page = table[seq_index[n] * pages_per_seq + pos / page_size];
        return (page * page_size + pos % page_size) * KV;
    }
};

PageIndex page_index(Tensor k_pages, Tensor page_table, Tensor seq_index) {
    return {page_table.as<int32_t>(), seq_index.as<int32_t>(), page_table.size(1),
            k_pages.size(1), k_pages.size(2)};
}

}  // namespace

template <typename Real>
void paged_kv_write(Tensor k_pages, Tensor v_pages, Tensor qkv, Tensor page_table,
                    Tensor seq_index, Tensor positions, int64_t H, int64_t Hkv) {
    const int64_t N = qkv.size(0), W = qkv.size(1), D = W / (H + 2 * Hkv), KV = Hkv * D;
    const PageIndex ix = page_index(k_pages, page_table, seq_index);
    for (int64_t n = 0; n < N; ++n) {
        const Real* row = qkv.as<Real>() + n * W;
        const int64_t at = ix.at(n, positions.as<int32_t>()[n]);
        for (int64_t i = 0; i < KV; ++i) {
            store(k_pages, at + i, row[H * D + i]);
            store(v_pages, at + i, row[(H + Hkv) * D + i]);
        }
    }
}

template <typename Real>
void paged_attention_forward(Tensor out, Tensor qkv, Tensor k_pages, Tensor v_pages,
                             Tensor page_table, Tensor seq_index, Tensor positions, int64_t H,
                             int64_t Hkv) {
    const int64_t N = qkv.size(0), W = qkv.size(1), D = W / (H + 2 * Hkv);
    const PageIndex ix = page_index(k_pages, page_table, seq_index);
    const double scale = 1.0 / std::sqrt(double(D));
    std::vector<double> p;
    for (int64_t n = 0; n < N; ++n)
        for (int64_t h = 0; h < H; ++h) {
            const int64_t g = h / (H / Hkv), visible = positions.as<int32_t>()[n] + 1;
            const Real* q = qkv.as<Real>() + n * W + h * D;
            p.assign(visible, 0.0);
            double max_score = -INFINITY;
            for (int64_t s = 0; s < visible; ++s) {
                const int64_t k = ix.at(n, s) + g * D;
                double dot = 0;
                for (int64_t d = 0; d < D; ++d) dot += double(q[d]) * load(k_pages, k + d);
                p[s] = dot * scale;
                max_score = std::max(max_score, p[s]);
            }
            double total = 0;
            for (double& x : p) total += (x = std::exp(x - max_score));
            Real* o = out.as<Real>() + n * H * D + h * D;
            for (int64_t d = 0; d < D; ++d) {
                double acc = 0;
                for (int64_t s = 0; s < visible; ++s)
                    acc += p[s] * load(v_pages, ix.at(n, s) + g * D + d);
                o[d] = static_cast<Real>(acc / total);
            }
        }
}

TANDEM_REFERENCE_INSTANTIATE(paged_kv_write, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor,
                             int64_t, int64_t);
TANDEM_REFERENCE_INSTANTIATE(paged_attention_forward, Tensor, Tensor, Tensor, Tensor, Tensor,
                             Tensor, Tensor, int64_t, int64_t);

}  // namespace tandem::backend::reference

// The cpu paged key/value cache, made for decoding: a row's query attends to a long context read
// through the page table. One task per (row, kv head) does the whole group of query heads that
// share that kv head, so each cached key and value is read (and converted from f16) once per
// group: scores page by page, a softmax per head, then the values page by page. Tasks run
// dynamically scheduled, since rows differ in context length; each task's result does not
// depend on which thread ran it.
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "backend/cpu/kernels.h"
#include "backend/cpu/simd.h"

namespace tandem::backend::cpu {

namespace {

// f16 storage read and written as the compiler's half type where it has one: with F16C (the
// x86-64-v3 and v4 clones) the conversions vectorise to vcvtph2ps / vcvtps2ph.
#if defined(__FLT16_MAX__)
using Half = _Float16;
inline float to_float(Half x) { return static_cast<float>(x); }
inline Half to_half(float x) { return static_cast<Half>(x); }
#else
using Half = uint16_t;
inline float to_float(Half x) { return f32_from_f16(x); }
inline Half to_half(float x) { return f16_from_f32(x); }
#endif
inline float to_float(float x) { return x; }

// The slots of one page that a task reads: `count` rows of the page's keys (or values) for its
// kv head, `stride` elements apart.
template <typename Elem>
struct PageRows {
    const Elem* first;
    int64_t count, stride;
};

// scores[j * ld + i] = scale * q_j . k_i for the `group` query heads (D apart) and the page's rows.
template <typename Elem>
[[gnu::always_inline]] inline void page_scores_impl(float* scores, int64_t ld, const float* q,
                                                    int64_t group, PageRows<Elem> k, int64_t D,
                                                    float scale) {
    for (int64_t i = 0; i < k.count; ++i) {
        const Elem* ki = k.first + i * k.stride;
        for (int64_t j = 0; j < group; ++j) {
            const float* qj = q + j * D;
            float dot = 0;
#pragma omp simd reduction(+ : dot)
            for (int64_t d = 0; d < D; ++d) dot += qj[d] * to_float(ki[d]);
            scores[j * ld + i] = dot * scale;
        }
    }
}
TANDEM_CPU_CLONES void page_scores(float* scores, int64_t ld, const float* q, int64_t group,
                                   PageRows<float> k, int64_t D, float scale) {
    page_scores_impl(scores, ld, q, group, k, D, scale);
}
TANDEM_CPU_CLONES void page_scores(float* scores, int64_t ld, const float* q, int64_t group,
                                   PageRows<Half> k, int64_t D, float scale) {
    page_scores_impl(scores, ld, q, group, k, D, scale);
}

// out_j += sum_i p[j * ld + i] v_i for the group's heads (out rows D apart).
template <typename Elem>
[[gnu::always_inline]] inline void page_values_impl(float* out, const float* p, int64_t ld,
                                                    int64_t group, PageRows<Elem> v, int64_t D) {
    for (int64_t i = 0; i < v.count; ++i) {
        const Elem* vi = v.first + i * v.stride;
        for (int64_t j = 0; j < group; ++j) {
            float* oj = out + j * D;
            const float w = p[j * ld + i];
#pragma omp simd
            for (int64_t d = 0; d < D; ++d) oj[d] += w * to_float(vi[d]);
        }
    }
}
TANDEM_CPU_CLONES void page_values(float* out, const float* p, int64_t ld, int64_t group,
                                   PageRows<float> v, int64_t D) {
    page_values_impl(out, p, ld, group, v, D);
}
TANDEM_CPU_CLONES void page_values(float* out, const float* p, int64_t ld, int64_t group,
                                   PageRows<Half> v, int64_t D) {
    page_values_impl(out, p, ld, group, v, D);
}

// In place: s = exp(s - max) / sum over the first n scores.
TANDEM_CPU_CLONES void softmax_in_place(float* s, int64_t n) {
    float mx = s[0];
#pragma omp simd reduction(max : mx)
    for (int64_t i = 0; i < n; ++i) mx = s[i] > mx ? s[i] : mx;
    float sum = 0;
#pragma omp simd reduction(+ : sum)
    for (int64_t i = 0; i < n; ++i) {
        s[i] = exp_approx(s[i] - mx);
        sum += s[i];
    }
    const float inv = 1.0f / sum;
#pragma omp simd
    for (int64_t i = 0; i < n; ++i) s[i] *= inv;
}

TANDEM_CPU_CLONES void store_row(float* dst, const float* src, int64_t n) {
    std::copy(src, src + n, dst);
}
TANDEM_CPU_CLONES void store_row(Half* dst, const float* src, int64_t n) {
    for (int64_t i = 0; i < n; ++i) dst[i] = to_half(src[i]);
}

struct Paged {
    int64_t N, H, Hkv, D, W, KV, page_size, pages_per_seq;
    const int32_t *table, *seq_index, *positions;

    Paged(Tensor qkv, Tensor k_pages, Tensor page_table, Tensor seq_index_t, Tensor positions_t,
          int64_t H_, int64_t Hkv_)
        : N(qkv.size(0)), H(H_), Hkv(Hkv_), D(qkv.size(1) / (H_ + 2 * Hkv_)), W(qkv.size(1)),
          KV(k_pages.size(2)), page_size(k_pages.size(1)), pages_per_seq(page_table.size(1)),
          table(page_table.as<int32_t>()), seq_index(seq_index_t.as<int32_t>()),
          positions(positions_t.as<int32_t>()) {}
    // The page holding position `pos` of row n's sequence.
    int64_t page(int64_t n, int64_t pos) const {
        return table[seq_index[n] * pages_per_seq + pos / page_size];
    }
};

template <typename Elem>
void write(const Paged& p, Tensor k_pages, Tensor v_pages, Tensor qkv) {
#pragma omp parallel for schedule(static)
    for (int64_t n = 0; n < p.N; ++n) {
        const int64_t pos = p.positions[n];
        const int64_t at = (p.page(n, pos) * p.page_size + pos % p.page_size) * p.KV;
        const float* row = qkv.as<float>() + n * p.W;
        store_row(k_pages.as<Elem>() + at, row + p.H * p.D, p.KV);
        store_row(v_pages.as<Elem>() + at, row + (p.H + p.Hkv) * p.D, p.KV);
    }
}

template <typename Elem>
void attend(const Paged& p, Tensor out, Tensor qkv, Tensor k_pages, Tensor v_pages) {
    const int64_t group = p.H / p.Hkv, tasks = p.N * p.Hkv;
    const float scale = 1.0f / std::sqrt(static_cast<float>(p.D));
    int64_t longest = 1;
    for (int64_t n = 0; n < p.N; ++n) longest = std::max<int64_t>(longest, p.positions[n] + 1);
    const Elem* keys = k_pages.as<Elem>();
    const Elem* values = v_pages.as<Elem>();
#pragma omp parallel
    {
        std::vector<float> scores(group * longest);  // per thread: [group, visible]
#pragma omp for schedule(dynamic, 1)
        for (int64_t task = 0; task < tasks; ++task) {
            const int64_t n = task / p.Hkv, g = task % p.Hkv, visible = p.positions[n] + 1;
            const float* q = qkv.as<float>() + n * p.W + g * group * p.D;
            float* o = out.as<float>() + n * p.H * p.D + g * group * p.D;
            const auto rows = [&](const Elem* base, int64_t first) {
                const int64_t page = p.page(n, first);
                return PageRows<Elem>{base + page * p.page_size * p.KV + g * p.D,
                                      std::min(p.page_size, visible - first), p.KV};
            };
            for (int64_t first = 0; first < visible; first += p.page_size)
                page_scores(scores.data() + first, visible, q, group, rows(keys, first), p.D,
                            scale);
            for (int64_t j = 0; j < group; ++j) softmax_in_place(scores.data() + j * visible, visible);
            std::fill(o, o + group * p.D, 0.0f);
            for (int64_t first = 0; first < visible; first += p.page_size)
                page_values(o, scores.data() + first, visible, group, rows(values, first), p.D);
        }
    }
}

}  // namespace

void paged_kv_write(Tensor k_pages, Tensor v_pages, Tensor qkv, Tensor page_table,
                    Tensor seq_index, Tensor positions, int64_t H, int64_t Hkv) {
    const Paged p(qkv, k_pages, page_table, seq_index, positions, H, Hkv);
    if (k_pages.dtype == DType::F16)
        write<Half>(p, k_pages, v_pages, qkv);
    else
        write<float>(p, k_pages, v_pages, qkv);
}

void paged_attention_forward(Tensor out, Tensor qkv, Tensor k_pages, Tensor v_pages,
                             Tensor page_table, Tensor seq_index, Tensor positions, int64_t H,
                             int64_t Hkv) {
    const Paged p(qkv, k_pages, page_table, seq_index, positions, H, Hkv);
    if (k_pages.dtype == DType::F16)
        attend<Half>(p, out, qkv, k_pages, v_pages);
    else
        attend<float>(p, out, qkv, k_pages, v_pages);
}

}  // namespace tandem::backend::cpu

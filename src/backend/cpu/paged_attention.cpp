// The cpu paged key/value cache, made for decoding: a row's query attends to a long context read
// through the page table. One task per (row, kv head) does the whole group of query heads that
// share that kv head, so each cached key and value is read (and converted from f16) once per
// group: scores page by page, a softmax per head, then the values page by page. Tasks run
// dynamically scheduled, since rows differ in context length; each task's result does not
// depend on which thread ran it.
#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#endif

#include <algorithm>
#include <cmath>
#include <vector>

#include "backend/cpu/kernels.h"
#include "backend/cpu/parallel.h"
#include "backend/cpu/simd.h"

namespace tandem::backend::cpu {

namespace {

// The rows of one page that a task reads, as f32: `count` rows of its kv head, `stride` apart.
struct PageRows {
    const float* first;
    int64_t count, stride;
};

// scores[j * ld + i] = scale * q_j . k_i for the `group` query heads (D apart) and the page's rows.
TANDEM_CPU_CLONES void page_scores(float* scores, int64_t ld, const float* q, int64_t group,
                                   PageRows k, int64_t D, float scale) {
    for (int64_t i = 0; i < k.count; ++i) {
        const float* ki = k.first + i * k.stride;
        for (int64_t j = 0; j < group; ++j) {
            const float* qj = q + j * D;
            float dot = 0;
#pragma omp simd reduction(+ : dot)
            for (int64_t d = 0; d < D; ++d) dot += qj[d] * ki[d];
            scores[j * ld + i] = dot * scale;
        }
    }
}

// out_j += sum_i p[j * ld + i] v_i for the group's heads (out rows D apart).
TANDEM_CPU_CLONES void page_values(float* out, const float* p, int64_t ld, int64_t group,
                                   PageRows v, int64_t D) {
    for (int64_t i = 0; i < v.count; ++i) {
        const float* vi = v.first + i * v.stride;
        for (int64_t j = 0; j < group; ++j) {
            float* oj = out + j * D;
            const float w = p[j * ld + i];
#pragma omp simd
            for (int64_t d = 0; d < D; ++d) oj[d] += w * vi[d];
        }
    }
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

// f16 <-> f32. GCC 12 does not vectorise _Float16 conversions, so reading an f16 page goes
// through F16C's vcvtph2ps explicitly (8 values an instruction) where the CPU has it: one
// decode row over 4096 positions (H 16, Hkv 8, D 128) went from 79 to 9 ms on a loaded 2-core
// Zen 5 VM. Writes are one row per token and stay scalar.
#if defined(__x86_64__) && defined(__GNUC__)
__attribute__((target("avx,f16c"))) void halves_to_floats_f16c(float* dst, const uint16_t* src,
                                                               int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(
            dst + i, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(src + i))));
    for (; i < n; ++i) dst[i] = f32_from_f16(src[i]);
}
bool has_f16c() {
    static const bool has = __builtin_cpu_supports("f16c");
    return has;
}
#else
void halves_to_floats_f16c(float*, const uint16_t*, int64_t) {}
bool has_f16c() {
    return false;
}
#endif
void halves_to_floats(float* dst, const uint16_t* src, int64_t n) {
    if (has_f16c()) return halves_to_floats_f16c(dst, src, n);
    for (int64_t i = 0; i < n; ++i) dst[i] = f32_from_f16(src[i]);
}

// A page's rows for one kv head come from memory `stride` elements apart (one row of
// [page_size, Hkv D] per position). The page after the current one is prefetched while the
// current one is computed: rows 4 KiB apart (Hkv D = 1024 in f32) defeat the hardware
// prefetcher, which stays within a 4 KiB page. Measured on the decode above: f32 22 -> 10 ms
// (a plain pass over all of K and V: 4-6 ms); two pages ahead was no better.
template <typename Elem>
void prefetch_rows(const Elem* first, int64_t count, int64_t stride, int64_t D) {
    constexpr int64_t kLine = 64 / sizeof(Elem);
    for (int64_t i = 0; i < count; ++i)
        for (int64_t d = 0; d < D; d += kLine) __builtin_prefetch(first + i * stride + d);
}

// The f32 view of `count` rows: f32 pages are read in place; f16 rows are converted into
// `buffer` (count * D) first.
PageRows as_floats(const float* first, int64_t count, int64_t stride, int64_t, float*) {
    return {first, count, stride};
}
PageRows as_floats(const uint16_t* first, int64_t count, int64_t stride, int64_t D, float* buffer) {
    for (int64_t i = 0; i < count; ++i) halves_to_floats(buffer + i * D, first + i * stride, D);
    return {buffer, count, D};
}

void store_row(float* dst, const float* src, int64_t n) {
    std::copy(src, src + n, dst);
}
void store_row(uint16_t* dst, const float* src, int64_t n) {
    for (int64_t i = 0; i < n; ++i) dst[i] = f16_from_f32(src[i]);
}

struct Paged {
    int64_t N, H, Hkv, D, W, KV, page_size, pages_per_seq;
    const int32_t *table, *seq_index, *positions;

    Paged(Tensor qkv, Tensor k_pages, Tensor page_table, Tensor seq_index_t, Tensor positions_t,
          int64_t H_, int64_t Hkv_)
        : N(qkv.size(0)),
          H(H_),
          Hkv(Hkv_),
          D(qkv.size(1) / (H_ + 2 * Hkv_)),
          W(qkv.size(1)),
          KV(k_pages.size(2)),
          page_size(k_pages.size(1)),
          pages_per_seq(page_table.size(1)),
          table(page_table.as<int32_t>()),
          seq_index(seq_index_t.as<int32_t>()),
          positions(positions_t.as<int32_t>()) {}
    // The page holding position `pos` of row n's sequence.
    int64_t page(int64_t n, int64_t pos) const {
        return table[seq_index[n] * pages_per_seq + pos / page_size];
    }
};

template <typename Elem>
void write(const Paged& p, Tensor k_pages, Tensor v_pages, Tensor qkv) {
#pragma omp parallel for schedule(static) if (worth_threads(2 * p.N * p.KV))
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
        std::vector<float> scores(group * longest);       // per thread: [group, visible]
        std::vector<float> converted(p.page_size * p.D);  // an f16 page's rows as f32
#pragma omp for schedule(dynamic, 1)
        for (int64_t task = 0; task < tasks; ++task) {
            const int64_t n = task / p.Hkv, g = task % p.Hkv, visible = p.positions[n] + 1;
            const float* q = qkv.as<float>() + n * p.W + g * group * p.D;
            float* o = out.as<float>() + n * p.H * p.D + g * group * p.D;
            // The rows of the page holding position `first` (a multiple of page_size).
            const auto rows = [&](const Elem* base, int64_t first) {
                return base + p.page(n, first) * p.page_size * p.KV + g * p.D;
            };
            const auto count = [&](int64_t first) {
                return std::min(p.page_size, visible - first);
            };
            const auto pass = [&](const Elem* base, auto&& compute) {
                for (int64_t first = 0; first < visible; first += p.page_size) {
                    const int64_t next = first + p.page_size;
                    if (next < visible) prefetch_rows(rows(base, next), count(next), p.KV, p.D);
                    compute(first, as_floats(rows(base, first), count(first), p.KV, p.D,
                                             converted.data()));
                }
            };
            pass(keys, [&](int64_t first, PageRows k) {
                page_scores(scores.data() + first, visible, q, group, k, p.D, scale);
            });
            for (int64_t j = 0; j < group; ++j)
                softmax_in_place(scores.data() + j * visible, visible);
            std::fill(o, o + group * p.D, 0.0f);
            pass(values, [&](int64_t first, PageRows v) {
                page_values(o, scores.data() + first, visible, group, v, p.D);
            });
        }
    }
}

}  // namespace

void paged_kv_write(Tensor k_pages, Tensor v_pages, Tensor qkv, Tensor page_table, Tensor seq_index,
                    Tensor positions, int64_t H, int64_t Hkv) {
    const Paged p(qkv, k_pages, page_table, seq_index, positions, H, Hkv);
    if (k_pages.dtype == DType::F16)
        write<uint16_t>(p, k_pages, v_pages, qkv);
    else
        write<float>(p, k_pages, v_pages, qkv);
}

void paged_attention_forward(Tensor out, Tensor qkv, Tensor k_pages, Tensor v_pages,
                             Tensor page_table, Tensor seq_index, Tensor positions, int64_t H,
                             int64_t Hkv) {
    const Paged p(qkv, k_pages, page_table, seq_index, positions, H, Hkv);
    if (k_pages.dtype == DType::F16)
        attend<uint16_t>(p, out, qkv, k_pages, v_pages);
    else
        attend<float>(p, out, qkv, k_pages, v_pages);
}

}  // namespace tandem::backend::cpu

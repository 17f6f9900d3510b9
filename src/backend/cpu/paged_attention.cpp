// The cpu paged key/value cache. A step's rows split into runs of consecutive positions of one
// sequence: a prefill chunk (kMinBlockRows rows or more) goes through blocks of query rows
// against K^T panels packed once per (run, kv head) (paged_attention_blocks.h); a decode row
// attends on its own, one task per (row, kv head) doing the whole group of query heads that
// share that kv head, so each cached key and value is read (and converted from f16) once per
// group: scores page by page, a softmax per head, then the values page by page. Tasks run
// dynamically scheduled, longest first; each task's result does not depend on which thread
// ran it.
#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#endif

#include <algorithm>
#include <cmath>
#include <memory>
#include <type_traits>
#include <vector>

#include "backend/cpu/kernels.h"
#include "backend/cpu/paged_attention_blocks.h"
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

// Runs of at least this many consecutive positions of one sequence in a step (a prefill chunk)
// go through the blocks of paged_attention_blocks.h; shorter runs (decode tokens) row by row.
constexpr int64_t kMinBlockRows = 4;
// Query vectors (rows x query heads of a kv head) per block task, which share each K^T panel it
// reads: 64, and 128 for a run that sees 1024 keys or more, where reading the panels (and the
// value rows) again for each block is what costs. paged_attention_bench, Qwen3-0.6B's heads, CPU
// ms per layer on a loaded 2-vCPU Sapphire Rapids: 512 rows after 3584 cached, 113 (64) against
// 95 (128); 512 rows from 0, 6.2 against 6.6 (f32 cache; the diagonal blocks waste more).
constexpr int64_t kBlockQueries = 64, kLongBlockQueries = 128, kLongRunKeys = 1024;

// A run of rows n0 .. n0 + rows - 1 at positions pos0 .. of one sequence.
struct Run {
    int64_t n0, rows, pos0;
    int64_t limit() const { return pos0 + rows; }  // the keys its last row sees
    int64_t panels() const { return ceil_div(limit(), kKeyBlock); }
};

// One task of the parallel loop: a single row (decode) against the keys of kv head g, or query
// rows [n0, n0 + rows) of run `run` against them. cost orders the tasks, longest first.
struct Task {
    int64_t run, n0, rows, g, cost;
};

// What a run's blocks read, per kv head: K^T panels, and the value row of each position.
// (Left uninitialised: packing writes all of them, and a prefill of 512 has 2 MB of panels.)
struct RunKeys {
    std::unique_ptr<float[]> keys_t;             // [Hkv, panels, D, kKeyBlock]
    std::unique_ptr<const float*[]> value_rows;  // [Hkv, limit]
    std::unique_ptr<float[]> values;             // [Hkv, limit, D] for an f16 cache
};

// One row's attention over its whole context for the group of query heads of kv head g: scores
// page by page, a softmax per head, then the values page by page (made for decoding).
template <typename Elem>
void attend_row(const Paged& p, float* out, const float* qkv, const Elem* keys, const Elem* values,
                int64_t n, int64_t g, std::vector<float>& scores, std::vector<float>& converted) {
    const int64_t group = p.H / p.Hkv, visible = p.positions[n] + 1;
    const float scale = 1.0f / std::sqrt(static_cast<float>(p.D));
    if (static_cast<int64_t>(scores.size()) < group * visible) scores.resize(group * visible);
    if (static_cast<int64_t>(converted.size()) < p.page_size * p.D)
        converted.resize(p.page_size * p.D);
    const float* q = qkv + n * p.W + g * group * p.D;
    float* o = out + n * p.H * p.D + g * group * p.D;
    // The rows of the page holding position `first` (a multiple of page_size).
    const auto rows = [&](const Elem* base, int64_t first) {
        return base + p.page(n, first) * p.page_size * p.KV + g * p.D;
    };
    const auto count = [&](int64_t first) { return std::min(p.page_size, visible - first); };
    const auto pass = [&](const Elem* base, auto&& compute) {
        for (int64_t first = 0; first < visible; first += p.page_size) {
            const int64_t next = first + p.page_size;
            if (next < visible) prefetch_rows(rows(base, next), count(next), p.KV, p.D);
            compute(first, as_floats(rows(base, first), count(first), p.KV, p.D, converted.data()));
        }
    };
    pass(keys, [&](int64_t first, PageRows k) {
        page_scores(scores.data() + first, visible, q, group, k, p.D, scale);
    });
    for (int64_t j = 0; j < group; ++j) softmax_in_place(scores.data() + j * visible, visible);
    std::fill(o, o + group * p.D, 0.0f);
    pass(values, [&](int64_t first, PageRows v) {
        page_values(o, scores.data() + first, visible, group, v, p.D);
    });
}

// A step's rows split into runs: consecutive rows at consecutive positions of one sequence.
std::vector<Run> runs_of(const Paged& p) {
    std::vector<Run> runs;
    for (int64_t n = 0; n < p.N;) {
        int64_t end = n + 1;
        while (end < p.N && p.seq_index[end] == p.seq_index[n] &&
               p.positions[end] == p.positions[end - 1] + 1)
            ++end;
        runs.push_back({n, end - n, p.positions[n]});
        n = end;
    }
    return runs;
}

// Packs panel `panel` of kv head g of a run: K^T [D, kKeyBlock] of its keys (zero past the last)
// and the value rows (pointers into an f32 cache, or f16 rows converted into keys.values).
template <typename Elem>
void pack_panel(const Paged& p, const Run& run, RunKeys& keys, const Elem* k_pages,
                const Elem* v_pages, int64_t g, int64_t panel, float* row) {
    const int64_t limit = run.limit(), k0 = panel * kKeyBlock;
    const int64_t count = std::min(kKeyBlock, limit - k0);
    float* kt = keys.keys_t.get() + (g * run.panels() + panel) * p.D * kKeyBlock;
    for (int64_t i = 0; i < count; ++i) {
        const int64_t pos = k0 + i;
        const int64_t at = (p.page(run.n0, pos) * p.page_size + pos % p.page_size) * p.KV + g * p.D;
        const PageRows k = as_floats(k_pages + at, 1, p.KV, p.D, row);
        for (int64_t d = 0; d < p.D; ++d) kt[d * kKeyBlock + i] = k.first[d];
        if constexpr (std::is_same_v<Elem, float>) {
            keys.value_rows[g * limit + pos] = v_pages + at;
        } else {
            float* v = keys.values.get() + (g * limit + pos) * p.D;
            halves_to_floats(v, v_pages + at, p.D);
            keys.value_rows[g * limit + pos] = v;
        }
    }
    for (int64_t d = 0; d < p.D; ++d)
        std::fill(kt + d * kKeyBlock + count, kt + (d + 1) * kKeyBlock, 0.0f);
}

template <typename Elem>
void attend(const Paged& p, PagedBlockKernel block_kernel, Tensor out, Tensor qkv, Tensor k_pages,
            Tensor v_pages) {
    const int64_t group = p.H / p.Hkv;
    const std::vector<Run> runs = runs_of(p);
    std::vector<RunKeys> run_keys(runs.size());
    std::vector<Task> tasks;
    struct Pack {
        int64_t run, g, panel;
    };
    std::vector<Pack> packs;
    for (int64_t r = 0; r < static_cast<int64_t>(runs.size()); ++r) {
        const Run& run = runs[r];
        if (run.rows < kMinBlockRows) {
            for (int64_t n = run.n0; n < run.n0 + run.rows; ++n)
                for (int64_t g = 0; g < p.Hkv; ++g)
                    tasks.push_back({-1, n, 1, g, group * (p.positions[n] + 1)});
            continue;
        }
        const int64_t queries = run.limit() >= kLongRunKeys ? kLongBlockQueries : kBlockQueries;
        const int64_t block_rows = std::max<int64_t>(1, queries / group);
        RunKeys& keys = run_keys[r];
        keys.keys_t =
            std::make_unique_for_overwrite<float[]>(p.Hkv * run.panels() * p.D * kKeyBlock);
        keys.value_rows = std::make_unique_for_overwrite<const float*[]>(p.Hkv * run.limit());
        if constexpr (!std::is_same_v<Elem, float>)
            keys.values = std::make_unique_for_overwrite<float[]>(p.Hkv * run.limit() * p.D);
        for (int64_t g = 0; g < p.Hkv; ++g) {
            for (int64_t panel = 0; panel < run.panels(); ++panel) packs.push_back({r, g, panel});
            for (int64_t first = 0; first < run.rows; first += block_rows) {
                const int64_t rows = std::min(block_rows, run.rows - first);
                tasks.push_back(
                    {r, run.n0 + first, rows, g, rows * group * (run.pos0 + first + rows)});
            }
        }
    }
    std::stable_sort(tasks.begin(), tasks.end(),
                     [](const Task& a, const Task& b) { return a.cost > b.cost; });
    const Elem* keys = k_pages.as<Elem>();
    const Elem* values = v_pages.as<Elem>();
    const int64_t n_packs = static_cast<int64_t>(packs.size());
    const int64_t n_tasks = static_cast<int64_t>(tasks.size());
#pragma omp parallel
    {
        std::vector<float> row(p.D), scratch, converted;
#pragma omp for schedule(dynamic, 1)
        for (int64_t i = 0; i < n_packs; ++i)
            pack_panel(p, runs[packs[i].run], run_keys[packs[i].run], keys, values, packs[i].g,
                       packs[i].panel, row.data());
#pragma omp for schedule(dynamic, 1)
        for (int64_t i = 0; i < n_tasks; ++i) {
            const Task& t = tasks[i];
            if (t.run < 0) {
                attend_row(p, out.as<float>(), qkv.as<float>(), keys, values, t.n0, t.g, scratch,
                           converted);
                continue;
            }
            const Run& run = runs[t.run];
            const RunKeys& rk = run_keys[t.run];
            const PagedBlock block{qkv.as<float>(),
                                   out.as<float>(),
                                   p.W,
                                   p.H,
                                   p.Hkv,
                                   p.D,
                                   t.n0,
                                   t.rows,
                                   run.pos0 + (t.n0 - run.n0),
                                   t.g,
                                   rk.keys_t.get() + t.g * run.panels() * p.D * kKeyBlock,
                                   rk.value_rows.get() + t.g * run.limit()};
            block_kernel(block, scratch);
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

PagedBlockKernel paged_block_kernel(WeightsIsa isa, int64_t D) {
    if (isa >= WeightsIsa::avx512 && D % 16 == 0) return paged_block_avx512;
    if (isa >= WeightsIsa::avx2 && D % 8 == 0) return paged_block_avx2;
    return paged_block_generic;
}

void paged_attention_forward(WeightsIsa isa, Tensor out, Tensor qkv, Tensor k_pages, Tensor v_pages,
                             Tensor page_table, Tensor seq_index, Tensor positions, int64_t H,
                             int64_t Hkv) {
    const Paged p(qkv, k_pages, page_table, seq_index, positions, H, Hkv);
    const PagedBlockKernel kernel = paged_block_kernel(isa, p.D);
    if (k_pages.dtype == DType::F16)
        attend<uint16_t>(p, kernel, out, qkv, k_pages, v_pages);
    else
        attend<float>(p, kernel, out, qkv, k_pages, v_pages);
}

void paged_attention_forward(Tensor out, Tensor qkv, Tensor k_pages, Tensor v_pages,
                             Tensor page_table, Tensor seq_index, Tensor positions, int64_t H,
                             int64_t Hkv) {
    paged_attention_forward(weights_isa_chosen(), out, qkv, k_pages, v_pages, page_table, seq_index,
                            positions, H, Hkv);
}

}  // namespace tandem::backend::cpu

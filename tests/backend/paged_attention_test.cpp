// The inference kernels over rows at their own positions and a paged key/value cache: every
// backend against reference/ on random inputs, and reference/ (and each backend) against the
// training kernels on the same keys: several sequences of different lengths run as mixed steps
// (prefill chunks beside single decode tokens, pages handed out in a scrambled order) give
// exactly the outputs of full causal attention over each sequence.
#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>
#include <random>

#include "backend/cpu/paged_attention_blocks.h"
#include "conformance.h"

namespace tandem::testing {
namespace {

struct Heads {
    int64_t H, Hkv, D, page_size;
    int64_t width() const { return (H + 2 * Hkv) * D; }
    std::string str() const {
        return "H=" + std::to_string(H) + " Hkv=" + std::to_string(Hkv) +
               " D=" + std::to_string(D) + " page=" + std::to_string(page_size);
    }
};

// Three sequences fed in steps: chunks[s][i] rows of sequence s in step i (0: not in the step).
// Sequence 0 prefills 7, decodes 1, then a chunk of 5; sequence 1 prefills 2 then 3 in the
// step where sequence 2 prefills 10, and sequence 2 then decodes one token a step.
const std::vector<std::vector<int64_t>> kChunks = {
    {7, 1, 5}, {2, 3}, {0, 10, 1, 1, 1, 1, 1, 1, 1, 1, 1}};

struct Step {
    std::vector<int32_t> seq_index, positions;
    std::vector<int64_t> rows;  // row n is position positions[n] of its sequence
};

// The page table and steps of kChunks (or of other chunks): every sequence gets ceil(length /
// page_size) pages, drawn from a shuffled pool of that many plus 3 spare (never used, left as
// noise).
struct Scenario {
    Heads h;
    std::vector<int64_t> lengths;
    int64_t n_pages = 0, pages_per_seq = 0;
    std::vector<int32_t> page_table;
    std::vector<Step> steps;

    explicit Scenario(Heads heads, const std::vector<std::vector<int64_t>>& schedule = kChunks)
        : h(heads) {
        for (const auto& chunks : schedule)
            lengths.push_back(std::accumulate(chunks.begin(), chunks.end(), int64_t{0}));
        const int64_t longest = *std::max_element(lengths.begin(), lengths.end());
        pages_per_seq = (longest + h.page_size - 1) / h.page_size;
        std::vector<int32_t> pool;
        for (int64_t len : lengths) n_pages += (len + h.page_size - 1) / h.page_size;
        n_pages += 3;
        pool.resize(n_pages);
        std::iota(pool.begin(), pool.end(), 0);
        std::shuffle(pool.begin(), pool.end(), std::mt19937(7));
        page_table.assign(lengths.size() * pages_per_seq, -1);
        size_t next = 0;
        for (size_t s = 0; s < lengths.size(); ++s)
            for (int64_t i = 0; i * h.page_size < lengths[s]; ++i)
                page_table[s * pages_per_seq + i] = pool[next++];

        std::vector<int64_t> done(lengths.size(), 0);
        for (size_t i = 0;; ++i) {
            Step step;
            // Odd steps list the sequences in reverse: the kernels may not rely on the order.
            for (size_t k = 0; k < schedule.size(); ++k) {
                const size_t s = i % 2 ? schedule.size() - 1 - k : k;
                if (i >= schedule[s].size()) continue;
                for (int64_t r = 0; r < schedule[s][i]; ++r) {
                    step.seq_index.push_back(static_cast<int32_t>(s));
                    step.positions.push_back(static_cast<int32_t>(done[s]));
                    step.rows.push_back(done[s]++);
                }
            }
            if (step.rows.empty()) break;
            steps.push_back(step);
        }
    }
    int64_t n_seqs() const { return static_cast<int64_t>(lengths.size()); }
    Shape pages_shape() const { return {n_pages, h.page_size, h.Hkv * h.D}; }
    // The rows of a step gathered from each sequence's [length, W] host rows.
    std::vector<float> gather(const Step& step, const std::vector<std::vector<float>>& seqs,
                              int64_t W) const {
        std::vector<float> out;
        for (size_t n = 0; n < step.rows.size(); ++n) {
            const float* row = seqs[step.seq_index[n]].data() + step.rows[n] * W;
            out.insert(out.end(), row, row + W);
        }
        return out;
    }
};

std::vector<std::vector<float>> random_sequences(const Scenario& sc, int64_t W, uint64_t seed) {
    std::vector<std::vector<float>> seqs;
    for (int64_t len : sc.lengths) seqs.push_back(random_normal(len * W, seed++));
    return seqs;
}

// The conformance targets whose backend has the inference kernels (cuda lists them missing).
std::vector<Target> paged_targets() {
    std::vector<Target> targets;
    for (const Target& t : conformance_targets())
        if (t.backend->missing_kernels().empty()) targets.push_back(t);
    return targets;
}

const std::vector<Heads> kHeads = {{6, 2, 16, 4}, {4, 4, 64, 16}, {8, 1, 128, 3}, {2, 1, 8, 1}};

// The tensors of one step, on both sides.
struct StepPairs {
    Pair &out, &qkv, &k, &v, &table, &seq, &pos;
};

// Runs sc's steps on the target and on reference/, both from the same noise in the cache (in the
// cache dtype): each step writes its rows with paged_kv_write, then `attend(be, side, pairs)`;
// checks every step's output, then the pages. Both sides store the same f16 values and read them
// back exactly: only the kernel's arithmetic differs, whatever the cache dtype.
template <typename Attend>
void check_steps(const Target& target, const Scenario& sc, DType cache, const std::string& label,
                 Attend&& attend) {
    const Heads& h = sc.h;
    const int64_t W = h.width();
    const auto seqs = random_sequences(sc, W, 31);
    const std::vector<float> noise = random_normal(sc.pages_shape().numel(), 5);
    backend::Backend& ref = reference_backend();
    Pair k{DeviceTensor::from(*target.backend, noise, sc.pages_shape(), cache),
           DeviceTensor::from(ref, noise, sc.pages_shape(), cache)};
    Pair v{DeviceTensor::from(*target.backend, noise, sc.pages_shape(), cache),
           DeviceTensor::from(ref, noise, sc.pages_shape(), cache)};
    Pair table = ints(target, sc.page_table, {sc.n_seqs(), sc.pages_per_seq});
    const double tol = kDefaultTolerance.of(target.dtype);
    const std::string what = label + " " + h.str() + " cache " + std::string(dtype_name(cache));
    for (size_t i = 0; i < sc.steps.size(); ++i) {
        const Step& step = sc.steps[i];
        const int64_t N = static_cast<int64_t>(step.rows.size());
        Pair qkv = values(target, sc.gather(step, seqs, W), {N, W});
        Pair seq = ints(target, step.seq_index, {N});
        Pair pos = ints(target, step.positions, {N});
        Pair out = overwritten(target, {N, h.H * h.D}, target.dtype);
        run_both(target, [&](backend::Backend& be, Side s) {
            be.paged_kv_write(s(k), s(v), s(qkv), s(table), s(seq), s(pos), h.H, h.Hkv);
            attend(be, s, StepPairs{out, qkv, k, v, table, seq, pos});
        });
        expect_close(out, tol, what + " step " + std::to_string(i) + " out");
    }
    expect_close(k, tol, what + " k pages");
    expect_close(v, tol, what + " v pages");
}

void attend_on(backend::Backend& be, Side s, const StepPairs& t, const Heads& h) {
    be.paged_attention_forward(s(t.out), s(t.qkv), s(t.k), s(t.v), s(t.table), s(t.seq), s(t.pos),
                               h.H, h.Hkv);
}

TEST(PagedAttention, MatchesReferenceInMixedStepsForEachCacheDtype) {
    for (const Target& target : paged_targets())
        for (const Heads& h : kHeads)
            for (DType cache : {DType::F32, DType::F16})
                check_steps(target, Scenario(h), cache, target.label(),
                            [&](backend::Backend& be, Side s, const StepPairs& t) {
                                attend_on(be, s, t, h);
                            });
}

// Runs the scenario on `be` and returns every row's output, per sequence [length, H D].
std::vector<std::vector<float>> run_paged(backend::Backend& be, DType dtype, DType cache,
                                          const Scenario& sc,
                                          const std::vector<std::vector<float>>& seqs) {
    const Heads& h = sc.h;
    const int64_t W = h.width(), O = h.H * h.D;
    DeviceTensor k(be, cache, sc.pages_shape()), v(be, cache, sc.pages_shape());
    DeviceTensor table =
        DeviceTensor::from_ints(be, sc.page_table, {sc.n_seqs(), sc.pages_per_seq});
    std::vector<std::vector<float>> result;
    for (int64_t len : sc.lengths) result.emplace_back(len * O);
    for (const Step& step : sc.steps) {
        const int64_t N = static_cast<int64_t>(step.rows.size());
        DeviceTensor qkv = DeviceTensor::from(be, sc.gather(step, seqs, W), {N, W}, dtype);
        DeviceTensor seq = DeviceTensor::from_ints(be, step.seq_index, {N});
        DeviceTensor pos = DeviceTensor::from_ints(be, step.positions, {N});
        DeviceTensor out(be, dtype, {N, O});
        be.paged_kv_write(k, v, qkv, table, seq, pos, h.H, h.Hkv);
        be.paged_attention_forward(out, qkv, k, v, table, seq, pos, h.H, h.Hkv);
        const std::vector<float> got = out.to_host();
        for (int64_t n = 0; n < N; ++n)
            std::copy_n(got.begin() + n * O, O,
                        result[step.seq_index[n]].begin() + step.rows[n] * O);
    }
    return result;
}

void check_paged_equals_full(backend::Backend& be, DType dtype, DType cache, double tol) {
    for (const Heads& h : kHeads) {
        const Scenario sc(h);
        const int64_t W = h.width();
        const auto seqs = random_sequences(sc, W, 41);
        const auto paged = run_paged(be, dtype, cache, sc, seqs);
        for (size_t s = 0; s < seqs.size(); ++s) {
            const int64_t T = sc.lengths[s];
            DeviceTensor qkv = DeviceTensor::from(be, seqs[s], {1, T, W}, dtype);
            DeviceTensor full(be, dtype, {1, T, h.H * h.D});
            DeviceTensor lse(be, backend::stats_dtype(dtype), {1, h.H, T});
            be.attention_forward(full, lse, qkv, h.H, h.Hkv);
            EXPECT_LE(relative_error(paged[s], full.to_host()), tol)
                << be.name() << "/" << dtype_name(dtype) << " cache " << dtype_name(cache) << " "
                << h.str() << " sequence " << s;
        }
    }
}

TEST(PagedAttention, ReferenceEqualsFullCausalAttentionOverEachSequence) {
    // f64 throughout: only the order of the sums differs.
    check_paged_equals_full(reference_backend(), DType::F64, DType::F64, 1e-12);
    // An f32 cache rounds each key and value once (2^-24), an f16 cache once at 2^-11.
    check_paged_equals_full(reference_backend(), DType::F64, DType::F32, 1e-6);
    check_paged_equals_full(reference_backend(), DType::F64, DType::F16, 2e-3);
}

TEST(PagedAttention, EveryBackendEqualsItsFullCausalAttention) {
    for (const std::string& name : backends_under_test()) {
        backend::Backend& be = backend::get_backend(name);
        if (!be.missing_kernels().empty()) continue;  // (cuda: the paged kernels are not written)
        check_paged_equals_full(be, DType::F32, DType::F32, 1e-5);
        check_paged_equals_full(be, DType::F32, DType::F16, 2e-3);
    }
}

// The cpu backend's prefill blocks (paged_attention_blocks.h) on every instruction-set path this
// CPU runs, against reference/: chunks that are not multiples of the block of query rows (64 /
// group) or of the key block (64), that span pages, that follow a history (a panel of keys
// partly before the chunk) beside decode rows and short runs, GQA groups of 1, 2 and 4, and a
// head of 8 (below AVX-512's 16 lanes: it takes the AVX2 path there); and a chunk after 1000
// cached positions (a long run: blocks of 128 query vectors).
const std::vector<std::vector<int64_t>> kLongChunks = {{37, 1, 70}, {130, 2}, {0, 5, 1, 100}};
struct BlockCase {
    Heads h;
    std::vector<std::vector<int64_t>> chunks;
};
const std::vector<BlockCase> kBlockCases = {{{4, 4, 32, 16}, kLongChunks},
                                            {{8, 4, 128, 5}, kLongChunks},
                                            {{8, 2, 16, 16}, kLongChunks},
                                            {{4, 1, 8, 3}, kLongChunks},
                                            {{4, 2, 16, 16}, {{1000, 90, 1}}}};

TEST(PagedAttention, CpuBlocksMatchReferenceOnEveryIsaPath) {
    using backend::cpu::WeightsIsa;
    const Target target{&backend::get_backend("cpu"), DType::F32};
    for (WeightsIsa isa : {WeightsIsa::generic, WeightsIsa::avx2, WeightsIsa::avx512}) {
        if (!backend::cpu::weights_isa_runs(isa)) continue;  // (not on this CPU)
        for (const BlockCase& c : kBlockCases)
            for (DType cache : {DType::F32, DType::F16})
                check_steps(target, Scenario(c.h, c.chunks), cache,
                            backend::cpu::weights_isa_name(isa),
                            [&](backend::Backend& be, Side s, const StepPairs& t) {
                                if (s.is_reference)
                                    return attend_on(be, s, t, c.h);
                                backend::cpu::paged_attention_forward(
                                    isa, s(t.out), s(t.qkv), s(t.k), s(t.v), s(t.table), s(t.seq),
                                    s(t.pos), c.h.H, c.h.Hkv);
                            });
    }
}

// ---- rows at their own positions ----------------------------------------------------------

const backend::RopeParams kPlainRope{10000.0f};
const backend::RopeParams kLlama3Rope{500000.0f,
                                      {.factor = 8.0f,
                                       .low_freq_factor = 1.0f,
                                       .high_freq_factor = 4.0f,
                                       .original_max_positions = 64}};

TEST(RopeAt, MatchesReferenceAtScrambledPositions) {
    for (const Target& target : paged_targets())
        for (const Heads& h : kHeads)
            for (bool scaled : {false, true}) {
                const int64_t N = 9, W = h.width();
                Pair qkv = values(target, random_normal(N * W, 3), {N, W});
                Pair pos = ints(target, {5, 0, 4095, 17, 1, 100000, 3, 3, 64}, {N});
                run_both(target, [&](backend::Backend& be, Side s) {
                    be.rope_at_forward(s(qkv), s(pos), h.H, h.Hkv,
                                       scaled ? kLlama3Rope : kPlainRope);
                });
                expect_close(qkv, kDefaultTolerance.of(target.dtype),
                             target.label() + " " + h.str() + (scaled ? " llama3" : ""));
            }
}

// Positions offset, offset + 1, ... give rope_forward's rotation with that pos_offset.
TEST(RopeAt, EqualsRopeForwardAtConsecutivePositions) {
    std::vector<backend::Backend*> all = {&reference_backend()};
    for (const std::string& name : backends_under_test())
        all.push_back(&backend::get_backend(name));
    for (backend::Backend* be : all) {
        if (!be->missing_kernels().empty()) continue;
        const Heads h{6, 2, 16, 1};
        const int64_t T = 7, W = h.width(), offset = 1000;
        const std::vector<float> host = random_normal(T * W, 9);
        DeviceTensor a = DeviceTensor::from(*be, host, {1, T, W}),
                     b = DeviceTensor::from(*be, host, {T, W});
        std::vector<int32_t> positions(T);
        std::iota(positions.begin(), positions.end(), static_cast<int32_t>(offset));
        DeviceTensor pos = DeviceTensor::from_ints(*be, positions, {T});
        be->rope_forward(a, h.H, h.Hkv, kLlama3Rope, offset);
        be->rope_at_forward(b, pos, h.H, h.Hkv, kLlama3Rope);
        EXPECT_EQ(a.to_host(), b.to_host()) << be->name();
    }
}

TEST(EmbeddingAt, MatchesReferenceForEveryStorageDtypeOfTheTables) {
    const int64_t N = 6, C = 64, V = 11, T_max = 40;
    for (const Target& target : paged_targets())
        for (DType storage : {DType::F32, DType::F16, DType::BF16, DType::Q8_0, DType::Q4_0})
            for (bool has_wpe : {true, false}) {
                const std::string what = target.label() + " tables " +
                                         std::string(dtype_name(storage)) + (has_wpe ? " wpe" : "");
                backend::Backend& ref = reference_backend();
                const std::vector<float> wte_host = random_normal(V * C, 2),
                                         wpe_host = random_normal(T_max * C, 3);
                // The tables in their storage dtype on both sides (what a quantized model holds).
                Pair wte{DeviceTensor::from(*target.backend, wte_host, {V, C}, storage),
                         DeviceTensor::from(ref, wte_host, {V, C}, storage)};
                Pair wpe =
                    has_wpe
                        ? Pair{DeviceTensor::from(*target.backend, wpe_host, {T_max, C}, storage),
                               DeviceTensor::from(ref, wpe_host, {T_max, C}, storage)}
                        : none();
                Pair tokens = ints(target, {3, 0, 10, 3, 7, 1}, {N});
                Pair pos = ints(target, {0, 39, 5, 5, 1, 12}, {N});
                Pair out = overwritten(target, {N, C}, target.dtype);
                run_both(target, [&](backend::Backend& be, Side s) {
                    be.embedding_at_forward(s(out), s(tokens), s(pos), s(wte), s(wpe));
                });
                expect_close(out, kDefaultTolerance.of(target.dtype), what);
            }
}

// The reference lookup of a quantized row is that row dequantized (plus the position row).
TEST(EmbeddingAt, ReferenceRowIsTheDequantizedTableRowPlusThePositionRow) {
    backend::Backend& ref = reference_backend();
    const int64_t C = 32, V = 4, T_max = 8;
    const std::vector<float> wte_host = random_normal(V * C, 12),
                             wpe_host = random_normal(T_max * C, 13);
    DeviceTensor wte = DeviceTensor::from(ref, wte_host, {V, C}, DType::Q8_0);
    DeviceTensor wpe = DeviceTensor::from(ref, wpe_host, {T_max, C}, DType::F32);
    DeviceTensor tokens = DeviceTensor::from_ints(ref, {2}, {1});
    DeviceTensor pos = DeviceTensor::from_ints(ref, {6}, {1});
    DeviceTensor out(ref, DType::F64, {1, C});
    ref.embedding_at_forward(out, tokens, pos, wte, wpe);
    const std::vector<float> table = wte.to_host(), got = out.to_host();
    for (int64_t c = 0; c < C; ++c)
        EXPECT_FLOAT_EQ(got[c], table[2 * C + c] + wpe_host[6 * C + c]) << c;
}

// ---- malformed inputs stop in the launcher's checks ----------------------------------------

struct Malformed {
    DeviceTensor k, v, qkv, table, seq, pos, out;
};
Malformed malformed(backend::Backend& be, std::vector<int32_t> table, std::vector<int32_t> pos) {
    const int64_t H = 2, Hkv = 1, D = 4, pages = 3, page_size = 2, N = 2;
    const Shape cache{pages, page_size, Hkv * D};
    return {DeviceTensor(be, DType::F32, cache),
            DeviceTensor(be, DType::F32, cache),
            DeviceTensor::from(be, random_normal(N * (H + 2 * Hkv) * D, 1), {N, (H + 2 * Hkv) * D}),
            DeviceTensor::from_ints(be, table, {2, 2}),
            DeviceTensor::from_ints(be, {0, 1}, {N}),
            DeviceTensor::from_ints(be, pos, {N}),
            DeviceTensor(be, DType::F32, {N, H * D})};
}

std::vector<std::string> host_backends() {
    std::vector<std::string> names = {"reference"};
    for (const std::string& name : backends_under_test())
        if (backend::get_backend(name).missing_kernels().empty()) names.push_back(name);
    return names;
}

// Each malformed table, and the message a write and an attention stop with (null: it runs).
struct BadTable {
    std::vector<int32_t> table, positions;
    const char* write_death;
    const char* attend_death;
};
const std::vector<BadTable> kBadTables = {
    // Sequence 1's second page is 7 in a pool of 3; row 1 (position 3) reads and writes it.
    {{0, 1, 2, 7}, {1, 3}, "page id out of range.*7, 3", "page id out of range.*7, 3"},
    // Position 4 needs slot 2 of a table two pages wide.
    {{0, 1, 2, 1},
     {1, 4},
     "position past the page table.*1, 4, 2, 2",
     "position past the page table"},
    // Sequence 1 has no first page (-1): writing position 3 is fine, attending to 0..3 is not.
    {{0, 1, -1, 2}, {1, 3}, nullptr, "page id out of range.*-1"},
};

TEST(PagedAttentionDeathTest, MalformedPageTablesStopNamingTheEntry) {
    for (const std::string& name : host_backends())
        for (const BadTable& bad : kBadTables) {
            backend::Backend& be = backend::get_backend(name);
            Malformed m = malformed(be, bad.table, bad.positions);
            const auto write = [&] {
                be.paged_kv_write(m.k, m.v, m.qkv, m.table, m.seq, m.pos, 2, 1);
            };
            const auto attend = [&] {
                be.paged_attention_forward(m.out, m.qkv, m.k, m.v, m.table, m.seq, m.pos, 2, 1);
            };
            if (bad.write_death)
                EXPECT_DEATH(write(), bad.write_death) << name;
            else
                write();
            EXPECT_DEATH(attend(), bad.attend_death) << name;
        }
}

}  // namespace
}  // namespace tandem::testing

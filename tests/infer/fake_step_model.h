// A StepModel for the scheduler's and engine's tests that is honest about paging: it keeps one
// token per page slot on the host, writes each row's token into the slot its page table names,
// and derives each logit row from the sequence's whole history read back through the page table.
// A row written to the wrong page, a write into a page two sequences share or a stale slot
// changes the logits, so any paging bug changes the output. oracle_logits() gives the same logits from the
// history directly, with no pages at all.
#pragma once

#include <algorithm>
#include <cstdint>
#include <span>
#include <vector>

#include "core/error.h"
#include "infer/step_model.h"

namespace tandem::testing {

struct FakeLimits {
    int64_t vocab = 257;
    int64_t max_positions = 64;
    int64_t max_tokens_per_step = 32;
    infer::PageGeometry pages{16, 4};
};

inline uint64_t fake_mix(uint64_t x) {  // splitmix64's finalizer
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

// The logits after `history`: V values in [0, 8), a function of every token and its position.
inline void oracle_logits(std::span<const int32_t> history, int64_t V, float* out) {
    uint64_t h = 0x1234;
    for (size_t p = 0; p < history.size(); ++p) h = fake_mix(h ^ (uint64_t(history[p]) << 20) ^ p);
    for (int64_t v = 0; v < V; ++v) out[v] = float(fake_mix(h + uint64_t(v)) % 8000) / 1000.0f;
}

// The greedy continuation of `prompt` by n tokens, stopping early at any of `stop_ids`.
inline std::vector<int32_t> oracle_greedy(std::vector<int32_t> history, int64_t n, int64_t V,
                                          std::span<const int32_t> stop_ids = {}) {
    std::vector<int32_t> out;
    std::vector<float> logits(V);
    for (int64_t i = 0; i < n; ++i) {
        oracle_logits(history, V, logits.data());
        const auto next = int32_t(std::max_element(logits.begin(), logits.end()) - logits.begin());
        if (std::find(stop_ids.begin(), stop_ids.end(), next) != stop_ids.end()) break;
        out.push_back(next);
        history.push_back(next);
    }
    return out;
}

class FakeStepModel : public infer::StepModel {
public:
    explicit FakeStepModel(FakeLimits limits = {})
        : limits_(limits), slots_(limits.pages.n_pages * limits.pages.page_size, -7) {}

    int64_t vocab_size() const override { return limits_.vocab; }
    int64_t max_positions() const override { return limits_.max_positions; }
    int64_t max_tokens_per_step() const override { return limits_.max_tokens_per_step; }
    infer::PageGeometry pages() const override { return limits_.pages; }

    std::span<const float> run(const infer::StepBatch& b) override {
        check(b);
        steps.push_back(b);
        const int64_t S = limits_.pages.page_size;
        auto slot = [&](int64_t seq, int64_t pos) -> int32_t& {
            return slots_[b.page_table[seq * b.pages_per_seq + pos / S] * S + pos % S];
        };
        for (const auto& [from, to] : b.page_copies)
            std::copy_n(slots_.begin() + from * S, S, slots_.begin() + to * S);
        // Every row's token first: a row sees the rows before it in the same step.
        for (int64_t n = 0; n < b.size(); ++n) slot(b.seq_index[n], b.positions[n]) = b.tokens[n];
        logits_.assign(b.logit_rows.size() * limits_.vocab, 0.0f);
        std::vector<int32_t> history;
        for (size_t i = 0; i < b.logit_rows.size(); ++i) {
            const int32_t n = b.logit_rows[i];
            history.clear();
            for (int64_t p = 0; p <= b.positions[n]; ++p) history.push_back(slot(b.seq_index[n], p));
            oracle_logits(history, limits_.vocab, logits_.data() + i * limits_.vocab);
        }
        return logits_;
    }

    std::vector<infer::StepBatch> steps;  // every batch run, in order

private:
    // What a real model would reject, and what would corrupt a real cache, fails the test here.
    void check(const infer::StepBatch& b) const {
        const int64_t N = b.size(), S = limits_.pages.page_size;
        if (N < 1 || N > limits_.max_tokens_per_step) throw Error("fake: N = ", N);
        if (int64_t(b.positions.size()) != N || int64_t(b.seq_index.size()) != N)
            throw Error("fake: row arrays differ in length");
        if (int64_t(b.page_table.size()) != b.n_seqs * b.pages_per_seq)
            throw Error("fake: page_table size");
        // Sequences may share pages (the prefix cache), but only to read them.
        std::vector<int32_t> listed(limits_.pages.n_pages, 0);
        for (int64_t s = 0; s < b.n_seqs; ++s)
            for (int64_t j = 0; j < b.pages_per_seq; ++j) {
                const int32_t page = b.page_table[s * b.pages_per_seq + j];
                if (page == -1) continue;
                if (page < 0 || page >= limits_.pages.n_pages)
                    throw Error("fake: page ", page, " out of range");
                ++listed[page];
            }
        for (int64_t n = 0; n < N; ++n) {
            if (b.tokens[n] < 0 || b.tokens[n] >= limits_.vocab) throw Error("fake: token id");
            if (b.seq_index[n] < 0 || b.seq_index[n] >= b.n_seqs) throw Error("fake: seq_index");
            if (b.positions[n] < 0 || b.positions[n] >= limits_.max_positions)
                throw Error("fake: position ", b.positions[n]);
            if (b.positions[n] / S >= b.pages_per_seq ||
                b.page_table[b.seq_index[n] * b.pages_per_seq + b.positions[n] / S] < 0)
                throw Error("fake: no page for position ", b.positions[n]);
            if (listed[b.page_table[b.seq_index[n] * b.pages_per_seq + b.positions[n] / S]] > 1)
                throw Error("fake: position ", b.positions[n], " written into a shared page");
            if (n > 0 && b.seq_index[n] == b.seq_index[n - 1] &&
                b.positions[n] != b.positions[n - 1] + 1)
                throw Error("fake: a sequence's rows are not consecutive");
            if (n > 0 && b.seq_index[n] != b.seq_index[n - 1] &&
                std::find(b.seq_index.begin(), b.seq_index.begin() + n, b.seq_index[n]) !=
                    b.seq_index.begin() + n)
                throw Error("fake: a sequence's rows are split");
        }
        for (const auto& [from, to] : b.page_copies)
            if (from < 0 || to < 0 || from >= limits_.pages.n_pages || to >= limits_.pages.n_pages ||
                from == to || listed[to] != 1)
                throw Error("fake: page copy ", from, " -> ", to);
        for (size_t i = 0; i < b.logit_rows.size(); ++i)
            if (b.logit_rows[i] < 0 || b.logit_rows[i] >= N ||
                (i > 0 && b.logit_rows[i] <= b.logit_rows[i - 1]))
                throw Error("fake: logit_rows");
    }

    FakeLimits limits_;
    std::vector<int32_t> slots_;  // [n_pages * page_size] the token at each slot
    std::vector<float> logits_;
};

}  // namespace tandem::testing

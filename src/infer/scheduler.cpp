// The scheduling policy: decode first, prompt chunks next, admission last (from the prefix
// cache when it is on); preemption of the newest sequence when the page pool runs dry. The
// oldest running sequence always gets its pages (every sequence fits the pool alone, checked in
// add()), so every step makes progress.
#include "infer/scheduler.h"

#include <algorithm>

#include "core/error.h"

namespace tandem::infer {

Scheduler::Scheduler(SchedulerOptions options, PageGeometry pages, int64_t max_positions)
    : options_(options), max_positions_(max_positions), pool_(pages) {
    if (options.max_seqs < 1)
        throw Error("engine: max_seqs is ", options.max_seqs, " but must be >= 1");
    if (options.max_tokens_per_step < 1)
        throw Error("engine: max_tokens_per_step is ", options.max_tokens_per_step,
                    " but must be >= 1");
    if (options.prefill_chunk < 1)
        throw Error("engine: prefill_chunk is ", options.prefill_chunk, " but must be >= 1");
    TANDEM_ASSERT(max_positions >= 1, max_positions);
}

void Scheduler::add(SeqId id, std::vector<int32_t> tokens, int64_t max_cached) {
    TANDEM_ASSERT(!contains(id), id);
    TANDEM_ASSERT(!tokens.empty() && max_cached <= max_positions_, tokens.size(), max_cached);
    if (pool_.pages_for(max_cached) > pool_.n_pages())
        throw Error("a sequence of up to ", max_cached, " positions needs ",
                    pool_.pages_for(max_cached), " pages of ", pool_.page_size(),
                    " but the whole KV cache holds ", pool_.n_pages(),
                    " (lower max_tokens, shorten the prompt, or give the cache more pages)");
    seqs_.emplace(id, Seq{std::move(tokens), 0, {}});
    waiting_.push_back(id);
}

void Scheduler::append(SeqId id, int32_t token) {
    auto it = seqs_.find(id);
    TANDEM_ASSERT(it != seqs_.end(), id);
    TANDEM_ASSERT(static_cast<int64_t>(it->second.tokens.size()) < max_positions_, id);
    it->second.tokens.push_back(token);
}

bool Scheduler::remove(SeqId id) {
    auto it = seqs_.find(id);
    if (it == seqs_.end()) return false;
    pool_.release(it->second.pages);
    seqs_.erase(it);
    if (auto w = std::find(waiting_.begin(), waiting_.end(), id); w != waiting_.end())
        waiting_.erase(w);
    if (auto r = std::find(running_.begin(), running_.end(), id); r != running_.end())
        running_.erase(r);
    return true;
}

std::span<const int32_t> Scheduler::tokens(SeqId id) const {
    auto it = seqs_.find(id);
    TANDEM_ASSERT(it != seqs_.end(), id);
    return it->second.tokens;
}

void Scheduler::preempt(SeqId id) {
    Seq& s = seqs_.at(id);
    pool_.release(s.pages);
    s.n_cached = 0;  // its keys and values are gone: recomputed from its tokens when readmitted
    running_.erase(std::find(running_.begin(), running_.end(), id));
    waiting_.push_front(id);
    ++n_preemptions_;
}

int64_t Scheduler::grant(SeqId id, int64_t want, std::vector<Pick>& picks, int64_t& budget,
                         StepPlan& plan) {
    Seq& s = seqs_.at(id);
    while (pool_.reachable_positions(s.pages) - s.n_cached < 1) {
        const SeqId victim = running_.back();
        if (auto p = std::find_if(picks.begin(), picks.end(), [&](const Pick& k) { return k.id == victim; });
            p != picks.end()) {
            budget += p->n_rows;
            picks.erase(p);
        }
        preempt(victim);
        plan.preempted.push_back(victim);
        if (victim == id) return 0;
    }
    const int64_t rows = std::min(want, pool_.reachable_positions(s.pages) - s.n_cached);
    const bool ok = pool_.reserve(s.pages, s.n_cached + rows);
    TANDEM_ASSERT(ok, id, rows);
    return rows;
}

StepPlan Scheduler::schedule() {
    pool_.release(copy_sources_);  // the last step has copied them
    StepPlan plan;
    std::vector<Pick> picks;
    int64_t budget = options_.max_tokens_per_step;
    // Decode steps first: a running sequence's next token is worth more than a new prompt's.
    // Copies of running_, since grant() may preempt from it while we walk.
    for (const SeqId id : std::vector<SeqId>(running_)) {
        if (budget == 0) break;
        if (std::find(running_.begin(), running_.end(), id) == running_.end()) continue;
        if (uncached(seqs_.at(id)) != 1) continue;
        if (grant(id, 1, picks, budget, plan) == 0) continue;
        picks.push_back({id, 1});
        budget -= 1;
    }
    // Then the prompt chunks of running sequences, oldest first.
    for (const SeqId id : std::vector<SeqId>(running_)) {
        if (budget == 0) break;
        if (std::find(running_.begin(), running_.end(), id) == running_.end()) continue;
        const int64_t left = uncached(seqs_.at(id));
        if (left < 2) continue;
        const int64_t want = std::min({left, options_.prefill_chunk, budget});
        const int64_t rows = grant(id, want, picks, budget, plan);
        if (rows == 0) continue;
        picks.push_back({id, rows});
        budget -= rows;
    }
    // Then admission, in queue order and never past a sequence that cannot start: a full pool
    // makes new requests wait. Not in a step that had to preempt: the pool is already short.
    while (plan.preempted.empty() && budget > 0 && !waiting_.empty() &&
           n_running() < options_.max_seqs && admit(waiting_.front(), budget, picks)) {
    }
    return build(picks, std::move(plan));
}

bool Scheduler::next_page_in_progress(const Seq& s) const {
    const int64_t S = pool_.page_size();
    const int64_t end = s.n_cached + S;  // the end of the page it would share next
    if (static_cast<int64_t>(s.tokens.size()) <= end) return false;  // its last token stays its own
    for (const SeqId id : running_) {
        const Seq& r = seqs_.at(id);
        if (r.n_cached < end && static_cast<int64_t>(r.tokens.size()) >= end &&
            std::equal(s.tokens.begin(), s.tokens.begin() + end, r.tokens.begin()))
            return true;
    }
    return false;
}

void Scheduler::share_part_of_a_page(Seq& s) {
    const int64_t S = pool_.page_size();
    const auto tokens = std::span(s.tokens).subspan(s.n_cached);
    auto [page, count] = pool_.longest_partial(s.pages, tokens);
    // Its last known token is always run (its logits choose the next one).
    count = std::min<int64_t>(count, static_cast<int64_t>(tokens.size()) - 1);
    if (page < 0 || count < 1) return;
    pool_.hold(page);  // so that the reservation below cannot reclaim it
    if (!pool_.reserve(s.pages, s.n_cached + S)) {
        PageList pin{page};
        pool_.release(pin);
        return;
    }
    copies_.emplace_back(page, s.pages.back());
    copy_sources_.push_back(page);
    s.n_cached += count;
}

bool Scheduler::admit(SeqId id, int64_t& budget, std::vector<Pick>& picks) {
    Seq& s = seqs_.at(id);
    TANDEM_ASSERT(s.pages.empty() && s.n_cached == 0, id);
    if (options_.prefix_cache) {
        // Its last known token is always run: its logits choose the next one.
        const int64_t most = (static_cast<int64_t>(s.tokens.size()) - 1) / pool_.page_size();
        s.n_cached = pool_.match(s.tokens, most, s.pages) * pool_.page_size();
    }
    const int64_t room = pool_.reachable_positions(s.pages) - s.n_cached;
    if (room < 1 || (options_.prefix_cache && next_page_in_progress(s))) {
        pool_.release(s.pages);
        s.n_cached = 0;
        return false;
    }
    // A copied page leaves room in itself (it shares at most page_size - 1 positions).
    if (options_.prefix_cache) share_part_of_a_page(s);
    const int64_t rows = std::min({uncached(s), options_.prefill_chunk, budget,
                                   pool_.reachable_positions(s.pages) - s.n_cached});
    const bool ok = pool_.reserve(s.pages, s.n_cached + rows);
    TANDEM_ASSERT(ok, id, rows);
    n_prefix_hits_ += s.n_cached;
    waiting_.pop_front();
    running_.push_back(id);
    picks.push_back({id, rows});
    budget -= rows;
    return true;
}

StepPlan Scheduler::build(const std::vector<Pick>& picks, StepPlan plan) {
    StepBatch& b = plan.batch;
    b.page_copies = std::move(copies_);
    copies_.clear();
    b.n_seqs = static_cast<int64_t>(picks.size());
    for (const Pick& p : picks)
        b.pages_per_seq = std::max<int64_t>(b.pages_per_seq, seqs_.at(p.id).pages.size());
    b.page_table.assign(b.n_seqs * b.pages_per_seq, -1);
    for (size_t i = 0; i < picks.size(); ++i) {
        Seq& s = seqs_.at(picks[i].id);
        TANDEM_ASSERT(s.n_cached + picks[i].n_rows <= max_positions_, picks[i].id);
        for (int64_t r = 0; r < picks[i].n_rows; ++r) {
            const int64_t pos = s.n_cached + r;
            b.tokens.push_back(s.tokens[pos]);
            b.positions.push_back(static_cast<int32_t>(pos));
            b.seq_index.push_back(static_cast<int32_t>(i));
        }
        std::copy(s.pages.begin(), s.pages.end(), b.page_table.begin() + i * b.pages_per_seq);
        // The pages this step completes; the step runs before the next plan can match them.
        const int64_t S = pool_.page_size();
        const int64_t done = options_.prefix_cache ? (s.n_cached + picks[i].n_rows) / S : 0;
        for (int64_t page = s.n_cached / S; page < done; ++page)
            pool_.publish(s.pages, page, std::span(s.tokens).subspan(page * S, S));
        s.n_cached += picks[i].n_rows;
        // Every known token is now cached: the last row's logits choose the next one.
        if (s.n_cached == static_cast<int64_t>(s.tokens.size())) {
            b.logit_rows.push_back(static_cast<int32_t>(b.tokens.size() - 1));
            plan.sampling.push_back(picks[i].id);
        }
        plan.seqs.push_back(picks[i].id);
    }
    return plan;
}

}  // namespace tandem::infer

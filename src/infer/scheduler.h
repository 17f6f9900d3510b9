// Continuous batching without a model: which sequences run in the next step, how many of their
// tokens, and in which pages of the cache. Sequences join and leave between steps; each step
// takes the decode tokens of running sequences first, then prompt chunks with the token budget
// left, then admits queued sequences. When a running sequence needs a page and the pool has none,
// the most recently admitted sequence is preempted: its pages are freed and it goes back to the
// head of the queue with its tokens kept, to be recomputed later. Sampling is the engine's job.
// With the prefix cache on, every page a sequence completes is published in the pool, and a
// sequence admitted later starts from the published pages its tokens begin with, and from a copy
// of the published page whose first tokens its next ones are (the step copies it first); a
// sequence whose next page a running one is still computing waits for it at the head of the
// queue.
#pragma once

#include <cstdint>
#include <deque>
#include <span>
#include <unordered_map>
#include <vector>

#include "infer/page_pool.h"
#include "infer/step_model.h"

namespace tandem::infer {

using SeqId = int64_t;

struct SchedulerOptions {
    int64_t max_seqs = 64;             // running sequences at most
    int64_t max_tokens_per_step = 512;  // rows of one step at most
    int64_t prefill_chunk = 256;        // rows of one sequence's prompt in one step at most
    bool prefix_cache = false;          // share computed pages between sequences (see above)
};

// One scheduled step: the batch for the StepModel and who is in it.
struct StepPlan {
    StepBatch batch;
    std::vector<SeqId> seqs;      // sequence of each page_table row, in batch order
    std::vector<SeqId> sampling;  // sequence of each logit row: it samples a token after the step
    std::vector<SeqId> preempted;  // sent back to the queue while planning this step
    bool empty() const { return batch.tokens.empty(); }
};

class Scheduler {
public:
    // Throws Error naming the option when a limit is below 1.
    Scheduler(SchedulerOptions options, PageGeometry pages, int64_t max_positions);

    // Queues a sequence whose known tokens are `tokens` (its prompt, or prompt and generated
    // tokens), which will hold at most `max_cached` positions in the cache. Throws Error when
    // those positions need more pages than the whole pool has: it could never run.
    void add(SeqId id, std::vector<int32_t> tokens, int64_t max_cached);
    // A token sampled for a sequence after a step: its next input.
    void append(SeqId id, int32_t token);
    // Drops a waiting or running sequence and returns its pages; false when `id` is unknown.
    bool remove(SeqId id);

    // Plans the next step and counts its rows as cached. Empty when nothing can run.
    StepPlan schedule();

    bool contains(SeqId id) const { return seqs_.count(id) != 0; }
    std::span<const int32_t> tokens(SeqId id) const;
    int64_t n_waiting() const { return static_cast<int64_t>(waiting_.size()); }
    int64_t n_running() const { return static_cast<int64_t>(running_.size()); }
    bool empty() const { return seqs_.empty(); }
    int64_t n_preemptions() const { return n_preemptions_; }
    // Positions admitted sequences took from the prefix cache instead of computing them.
    int64_t n_prefix_hits() const { return n_prefix_hits_; }
    // Forgets every published page: after the model's weights change, or a step that failed
    // part-way, the cached values are no longer what their tokens produce.
    void forget_prefix_cache() { pool_.forget_published(); }
    const PagePool& pool() const { return pool_; }
    const SchedulerOptions& options() const { return options_; }

private:
    struct Seq {
        std::vector<int32_t> tokens;  // every known token; positions [0, n_cached) are cached
        int64_t n_cached = 0;
        PageList pages;
    };
    struct Pick {
        SeqId id;
        int64_t n_rows;
    };
    int64_t uncached(const Seq& s) const { return static_cast<int64_t>(s.tokens.size()) - s.n_cached; }
    // Gives sequence `id` pages for up to `want` more rows, preempting the newest running
    // sequences while not even one row's can be had. Returns the rows granted (>= 1), or 0 when
    // `id` itself was preempted.
    int64_t grant(SeqId id, int64_t want, std::vector<Pick>& picks, int64_t& budget,
                  StepPlan& plan);
    void preempt(SeqId id);
    // Whether a running sequence is computing the page that `s` (waiting, its cached pages
    // matched) would need next and that it could share once published.
    bool next_page_in_progress(const Seq& s) const;
    bool admit(SeqId id, int64_t& budget, std::vector<Pick>& picks);
    // Admitting `s` (its whole cached pages matched): the first positions of its next page from a
    // copy of a published page that begins with its next tokens, when one does.
    void share_part_of_a_page(Seq& s);
    StepPlan build(const std::vector<Pick>& picks, StepPlan plan);

    SchedulerOptions options_;
    int64_t max_positions_;
    PagePool pool_;
    std::unordered_map<SeqId, Seq> seqs_;
    std::deque<SeqId> waiting_;   // front runs first
    std::vector<SeqId> running_;  // in admission order: the newest is last
    int64_t n_preemptions_ = 0;
    int64_t n_prefix_hits_ = 0;
    // The page copies of the step being planned, and their source pages, held until the step
    // has run (the next schedule()) so that nothing reclaims them first.
    std::vector<std::pair<int32_t, int32_t>> copies_;
    PageList copy_sources_;
};

}  // namespace tandem::infer

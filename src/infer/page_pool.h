// The pages of a paged key/value cache as a countable resource: which of the pool's fixed-size
// pages are free, and a sequence's list of pages growing with its length and returned whole when
// it ends. It owns no memory of keys or values (the StepModel does); it only hands out indices.
//
// It is also the prefix cache. A page whose every position has been computed can be published
// under its tokens and the page before it; a later sequence whose tokens begin the same way
// takes the published pages (shared, counted by reference) instead of computing them again. A
// published page nobody holds stays findable until its slot is needed: reserve() takes never-
// published pages first, then the least recently released published ones.
#pragma once

#include <cstdint>
#include <list>
#include <span>
#include <utility>
#include <unordered_map>
#include <vector>

#include "infer/step_model.h"

namespace tandem::infer {

// The pages one sequence holds, in position order: position p lives in pages[p / page_size].
using PageList = std::vector<int32_t>;

class PagePool {
public:
    // Throws Error unless n_pages >= 1 and page_size >= 1.
    explicit PagePool(PageGeometry geometry);

    int64_t n_pages() const { return geometry_.n_pages; }
    int64_t page_size() const { return geometry_.page_size; }
    // Pages no sequence holds: never published, or published and idle (reserve() may take them).
    int64_t n_free() const { return static_cast<int64_t>(free_.size() + idle_.size()); }
    // Published pages no sequence holds: what the prefix cache keeps beyond the running sequences.
    int64_t n_idle_published() const { return static_cast<int64_t>(idle_.size()); }
    // Pages that n_positions positions occupy.
    int64_t pages_for(int64_t n_positions) const;
    // Positions that `pages` plus every free page could hold: how far a sequence could grow now.
    int64_t reachable_positions(const PageList& pages) const;

    // Grows `pages` to hold n_positions positions. Returns false and leaves `pages` unchanged
    // when the pool has too few free pages; never shrinks.
    bool reserve(PageList& pages, int64_t n_positions);
    // Drops this holder's reference to every page of `pages` and empties the list. A page nobody
    // holds any more is free again; a published one stays findable until reserve() needs it.
    void release(PageList& pages);

    // Publishes pages[index], whose positions hold `tokens` (page_size of them, all computed),
    // after pages[0, index) (published before it). A page already published, or content that
    // another page already holds, is left as it is.
    void publish(const PageList& pages, int64_t index, std::span<const int32_t> tokens);
    // Appends to `pages` (empty) the published pages that hold the longest page-aligned prefix of
    // `tokens`, at most max_pages of them, taking a reference to each. Returns how many.
    int64_t match(std::span<const int32_t> tokens, int64_t max_pages, PageList& pages);
    // After match(): the published page that could follow `pages` (their last page its parent)
    // whose first tokens agree longest with `tokens` (the tokens after those pages), and how many
    // agree (at most page_size - 1); {-1, 0} when none agrees on its first token. A sequence
    // takes that many positions from a copy of the page. Takes no reference.
    std::pair<int32_t, int64_t> longest_partial(const PageList& pages,
                                                std::span<const int32_t> tokens) const;
    // Takes a reference to one page (published, or held by someone): it cannot be reclaimed
    // until release() gives it back.
    void hold(int32_t page);
    // Unpublishes every page (the values behind them are no longer what their tokens produce:
    // new weights, or a step that failed part-way). Held pages stay with their holders.
    void forget_published();

private:
    // What a published page is: its tokens after a given page (-1: the first) in a given life.
    struct Key {
        int32_t parent;
        uint64_t parent_life;
        std::vector<int32_t> tokens;
    };
    uint64_t hash(int32_t parent, uint64_t parent_life, std::span<const int32_t> tokens) const;
    int32_t find(int32_t parent, std::span<const int32_t> tokens) const;
    void unpublish(int32_t page);
    int32_t take_page();

    PageGeometry geometry_;
    std::vector<int32_t> free_;    // unpublished and unheld; a stack: freed last, handed out first
    std::list<int32_t> idle_;      // published and unheld, least recently released first
    std::vector<std::list<int32_t>::iterator> idle_at_;  // a page's place in idle_, when there
    std::vector<int32_t> holders_;  // references per page; 0 for a free or idle page
    std::vector<bool> published_;
    std::vector<Key> key_;          // of a published page
    // A page's life: bumped when it is unpublished, so that a page published after it (keyed on
    // its old life) can never be found again.
    std::vector<uint64_t> life_;
    std::unordered_multimap<uint64_t, int32_t> index_;  // hash of a Key -> published page
    std::unordered_multimap<int32_t, int32_t> children_;  // parent (-1: none) -> published page
};

}  // namespace tandem::infer

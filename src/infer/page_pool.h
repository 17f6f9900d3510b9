// The pages of a paged key/value cache as a countable resource: which of the pool's fixed-size
// pages are free, and a sequence's list of pages growing with its length and returned whole when
// it ends. It owns no memory of keys or values (the StepModel does); it only hands out indices.
#pragma once

#include <cstdint>
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
    int64_t n_free() const { return static_cast<int64_t>(free_.size()); }
    // Pages that n_positions positions occupy.
    int64_t pages_for(int64_t n_positions) const;
    // Positions that `pages` plus every free page could hold: how far a sequence could grow now.
    int64_t reachable_positions(const PageList& pages) const;

    // Grows `pages` to hold n_positions positions. Returns false and leaves `pages` unchanged
    // when the pool has too few free pages; never shrinks.
    bool reserve(PageList& pages, int64_t n_positions);
    // Returns every page of `pages` to the pool and empties the list.
    void release(PageList& pages);

private:
    PageGeometry geometry_;
    std::vector<int32_t> free_;  // a stack: the page freed last is handed out first
    std::vector<bool> in_use_;   // catches a page released twice or never handed out
};

}  // namespace tandem::infer

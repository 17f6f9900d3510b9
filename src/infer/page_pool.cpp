// Free-page stack and per-sequence page lists of the paged key/value cache.
#include "infer/page_pool.h"

#include "core/error.h"

namespace tandem::infer {

PagePool::PagePool(PageGeometry geometry) : geometry_(geometry) {
    if (geometry.n_pages < 1 || geometry.n_pages > INT32_MAX)
        throw Error("page pool: n_pages is ", geometry.n_pages,
                    " but must be in [1, 2^31) (give the cache more memory or more pages)");
    if (geometry.page_size < 1)
        throw Error("page pool: page_size is ", geometry.page_size, " but must be >= 1");
    free_.reserve(geometry.n_pages);
    // Pushed in reverse so that page 0 goes out first: a fresh pool hands out 0, 1, 2, ...
    for (int64_t p = geometry.n_pages - 1; p >= 0; --p) free_.push_back(static_cast<int32_t>(p));
    in_use_.assign(geometry.n_pages, false);
}

int64_t PagePool::pages_for(int64_t n_positions) const {
    return (n_positions + geometry_.page_size - 1) / geometry_.page_size;
}

int64_t PagePool::reachable_positions(const PageList& pages) const {
    return (static_cast<int64_t>(pages.size()) + n_free()) * geometry_.page_size;
}

bool PagePool::reserve(PageList& pages, int64_t n_positions) {
    const int64_t need = pages_for(n_positions) - static_cast<int64_t>(pages.size());
    if (need <= 0) return true;
    if (need > n_free()) return false;
    for (int64_t i = 0; i < need; ++i) {
        const int32_t page = free_.back();
        free_.pop_back();
        TANDEM_ASSERT(!in_use_[page], page);
        in_use_[page] = true;
        pages.push_back(page);
    }
    return true;
}

void PagePool::release(PageList& pages) {
    for (const int32_t page : pages) {
        TANDEM_ASSERT(page >= 0 && page < geometry_.n_pages && in_use_[page], page);
        in_use_[page] = false;
        free_.push_back(page);
    }
    pages.clear();
}

}  // namespace tandem::infer

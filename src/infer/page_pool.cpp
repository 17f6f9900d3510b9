// Free pages, per-sequence page lists with shared references, and the published-prefix index of
// the paged key/value cache.
#include "infer/page_pool.h"

#include <algorithm>

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
    idle_at_.resize(geometry.n_pages);
    holders_.assign(geometry.n_pages, 0);
    published_.assign(geometry.n_pages, false);
    key_.resize(geometry.n_pages);
    life_.assign(geometry.n_pages, 0);
}

int64_t PagePool::pages_for(int64_t n_positions) const {
    return (n_positions + geometry_.page_size - 1) / geometry_.page_size;
}

int64_t PagePool::reachable_positions(const PageList& pages) const {
    return (static_cast<int64_t>(pages.size()) + n_free()) * geometry_.page_size;
}

int32_t PagePool::take_page() {
    int32_t page;
    if (!free_.empty()) {
        page = free_.back();
        free_.pop_back();
    } else {
        // The published page released longest ago: the one least likely to be asked for again.
        page = idle_.front();
        idle_.pop_front();
        unpublish(page);
    }
    TANDEM_ASSERT(holders_[page] == 0, page);
    holders_[page] = 1;
    return page;
}

bool PagePool::reserve(PageList& pages, int64_t n_positions) {
    const int64_t need = pages_for(n_positions) - static_cast<int64_t>(pages.size());
    if (need <= 0) return true;
    if (need > n_free()) return false;
    for (int64_t i = 0; i < need; ++i) pages.push_back(take_page());
    return true;
}

void PagePool::release(PageList& pages) {
    // From the last page back, so that a chain's tail is reclaimed before its head: the head is
    // the part other sequences are likelier to share.
    for (auto it = pages.rbegin(); it != pages.rend(); ++it) {
        const int32_t page = *it;
        TANDEM_ASSERT(page >= 0 && page < geometry_.n_pages && holders_[page] > 0, page);
        if (--holders_[page] > 0) continue;
        if (published_[page]) {
            idle_.push_back(page);
            idle_at_[page] = std::prev(idle_.end());
        } else {
            free_.push_back(page);
        }
    }
    pages.clear();
}

uint64_t PagePool::hash(int32_t parent, uint64_t parent_life, std::span<const int32_t> tokens) const {
    uint64_t h = 0x9E3779B97F4A7C15ull ^ (uint64_t(uint32_t(parent)) << 32) ^ parent_life;
    for (const int32_t t : tokens) h = (h ^ uint64_t(uint32_t(t))) * 0x100000001B3ull;
    return h ^ (h >> 29);
}

int32_t PagePool::find(int32_t parent, std::span<const int32_t> tokens) const {
    const uint64_t parent_life = parent < 0 ? 0 : life_[parent];
    auto [begin, end] = index_.equal_range(hash(parent, parent_life, tokens));
    for (auto it = begin; it != end; ++it) {
        const Key& k = key_[it->second];
        if (k.parent == parent && k.parent_life == parent_life &&
            std::equal(k.tokens.begin(), k.tokens.end(), tokens.begin(), tokens.end()))
            return it->second;
    }
    return -1;
}

void PagePool::publish(const PageList& pages, int64_t index, std::span<const int32_t> tokens) {
    TANDEM_ASSERT(index >= 0 && index < static_cast<int64_t>(pages.size()), index, pages.size());
    TANDEM_ASSERT(static_cast<int64_t>(tokens.size()) == geometry_.page_size, tokens.size());
    const int32_t page = pages[index];
    const int32_t parent = index == 0 ? -1 : pages[index - 1];
    TANDEM_ASSERT(holders_[page] > 0, page);
    if (published_[page] || (parent >= 0 && !published_[parent]) || find(parent, tokens) >= 0)
        return;
    Key& k = key_[page];
    k.parent = parent;
    k.parent_life = parent < 0 ? 0 : life_[parent];
    k.tokens.assign(tokens.begin(), tokens.end());
    index_.emplace(hash(k.parent, k.parent_life, k.tokens), page);
    children_.emplace(parent, page);
    published_[page] = true;
}

int64_t PagePool::match(std::span<const int32_t> tokens, int64_t max_pages, PageList& pages) {
    TANDEM_ASSERT(pages.empty(), pages.size());
    const int64_t S = geometry_.page_size;
    const int64_t limit = std::min<int64_t>(max_pages, static_cast<int64_t>(tokens.size()) / S);
    int32_t parent = -1;
    for (int64_t i = 0; i < limit; ++i) {
        const int32_t page = find(parent, tokens.subspan(i * S, S));
        if (page < 0) break;
        if (holders_[page]++ == 0) idle_.erase(idle_at_[page]);
        pages.push_back(page);
        parent = page;
    }
    return static_cast<int64_t>(pages.size());
}

std::pair<int32_t, int64_t> PagePool::longest_partial(const PageList& pages,
                                                      std::span<const int32_t> tokens) const {
    const int32_t parent = pages.empty() ? -1 : pages.back();
    const uint64_t parent_life = parent < 0 ? 0 : life_[parent];
    const auto most = std::min<int64_t>(geometry_.page_size - 1, static_cast<int64_t>(tokens.size()));
    std::pair<int32_t, int64_t> best{-1, 0};
    auto [begin, end] = children_.equal_range(parent);
    for (auto it = begin; it != end; ++it) {
        const Key& k = key_[it->second];
        if (k.parent_life != parent_life) continue;  // published after an earlier life of parent
        int64_t n = 0;
        while (n < most && k.tokens[n] == tokens[n]) ++n;
        if (n > best.second) best = {it->second, n};
    }
    return best;
}

void PagePool::hold(int32_t page) {
    TANDEM_ASSERT(page >= 0 && page < geometry_.n_pages && (holders_[page] > 0 || published_[page]), page);
    if (holders_[page]++ == 0) idle_.erase(idle_at_[page]);
}

void PagePool::unpublish(int32_t page) {
    const Key& k = key_[page];
    auto [begin, end] = index_.equal_range(hash(k.parent, k.parent_life, k.tokens));
    for (auto it = begin; it != end; ++it)
        if (it->second == page) {
            index_.erase(it);
            break;
        }
    auto [first, last] = children_.equal_range(k.parent);
    for (auto it = first; it != last; ++it)
        if (it->second == page) {
            children_.erase(it);
            break;
        }
    published_[page] = false;
    ++life_[page];
}

void PagePool::forget_published() {
    for (int32_t page = 0; page < geometry_.n_pages; ++page)
        if (published_[page]) unpublish(page);
    for (const int32_t page : idle_) free_.push_back(page);
    idle_.clear();
}

}  // namespace tandem::infer

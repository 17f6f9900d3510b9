// The page pool: pages handed out and returned, references shared by sequences, and the
// published-prefix index: exact matches only, a longest page-aligned prefix, least recently
// released pages reclaimed first, and a reclaimed page's successors never found again.
#include "infer/page_pool.h"

#include <gtest/gtest.h>

#include <algorithm>

#include "common/error_message.h"

namespace tandem::infer {
namespace {

using testing::error_message;

TEST(PagePool, ReservesGrowsAndReleases) {
    PagePool pool({.n_pages = 4, .page_size = 3});
    EXPECT_EQ(pool.pages_for(0), 0);
    EXPECT_EQ(pool.pages_for(3), 1);
    EXPECT_EQ(pool.pages_for(4), 2);
    PageList a, b;
    ASSERT_TRUE(pool.reserve(a, 4));
    EXPECT_EQ(a.size(), 2u);
    ASSERT_TRUE(pool.reserve(a, 6));  // still two pages
    EXPECT_EQ(a.size(), 2u);
    EXPECT_EQ(pool.reachable_positions(a), 12);
    // Three more pages do not exist: b stays empty, a keeps its own.
    EXPECT_FALSE(pool.reserve(b, 9));
    EXPECT_TRUE(b.empty());
    ASSERT_TRUE(pool.reserve(b, 6));
    EXPECT_EQ(pool.n_free(), 0);
    for (int32_t p : a) EXPECT_EQ(std::count(b.begin(), b.end(), p), 0);
    pool.release(a);
    EXPECT_TRUE(a.empty());
    EXPECT_EQ(pool.n_free(), 2);
}

TEST(PagePool, RejectsEmptyGeometry) {
    EXPECT_NE(error_message([] { PagePool({.n_pages = 0, .page_size = 4}); }).find("n_pages is 0"),
              std::string::npos);
    EXPECT_NE(error_message([] { PagePool({.n_pages = 4, .page_size = 0}); }).find("page_size is 0"),
              std::string::npos);
}

// Reserves pages for `tokens` and publishes each full one, as the scheduler does once computed.
PageList computed(PagePool& pool, const std::vector<int32_t>& tokens) {
    PageList pages;
    EXPECT_TRUE(pool.reserve(pages, int64_t(tokens.size())));
    const int64_t S = pool.page_size();
    for (int64_t i = 0; i < int64_t(tokens.size()) / S; ++i)
        pool.publish(pages, i, std::span(tokens).subspan(i * S, S));
    return pages;
}

TEST(PagePool, MatchesTheLongestPublishedPageAlignedPrefix) {
    PagePool pool({.n_pages = 8, .page_size = 2});
    PageList a = computed(pool, {1, 2, 3, 4, 5});  // pages [1 2] [3 4] [5 .]: two published
    PageList b;
    EXPECT_EQ(pool.match(std::vector<int32_t>{1, 2, 3, 4, 5, 6}, 10, b), 2);
    EXPECT_EQ(b, PageList(a.begin(), a.begin() + 2));
    PageList c;
    EXPECT_EQ(pool.match(std::vector<int32_t>{1, 2, 3, 9}, 10, c), 1);  // diverges in page 1
    EXPECT_EQ(c, PageList{a[0]});
    PageList d;
    EXPECT_EQ(pool.match(std::vector<int32_t>{2, 1, 3, 4}, 10, d), 0);  // same tokens, other order
    PageList e;
    EXPECT_EQ(pool.match(std::vector<int32_t>{1, 2, 3, 4}, 1, e), 1);  // max_pages caps it
    PageList f;
    EXPECT_EQ(pool.match(std::vector<int32_t>{1, 2, 3}, 10, f), 1);  // only whole pages
    // Shared pages come back once every holder has released them.
    const int64_t free_before = pool.n_free();
    for (PageList* l : {&a, &b, &c, &e}) pool.release(*l);
    EXPECT_EQ(pool.n_free(), free_before + 2);  // a's third page, and the second (a's and b's)
    pool.release(f);
    EXPECT_EQ(pool.n_free(), 8);
    EXPECT_EQ(pool.n_idle_published(), 2);
}

TEST(PagePool, TheLongestPartialMatchIsAmongThePagesAfterTheMatchedOnes) {
    PagePool pool({.n_pages = 8, .page_size = 4});
    PageList a = computed(pool, {1, 2, 3, 4, 5, 6, 7, 8});
    PageList b;  // a's first page, then its own second one
    ASSERT_EQ(pool.match(std::vector<int32_t>{1, 2, 3, 4, 0}, 1, b), 1);
    ASSERT_TRUE(pool.reserve(b, 8));
    pool.publish(b, 1, std::vector<int32_t>{5, 6, 9, 9});
    PageList c = computed(pool, {5, 6, 7, 8});  // the same tokens as a's second page, first
    PageList m;
    ASSERT_EQ(pool.match(std::vector<int32_t>{1, 2, 3, 4, 5, 6, 7, 0}, 10, m), 1);
    // After a's first page: a's second agrees on 3 tokens, b's on 2 (c's is not after it).
    EXPECT_EQ(pool.longest_partial(m, std::vector<int32_t>{5, 6, 7, 0}), std::make_pair(a[1], int64_t(3)));
    EXPECT_EQ(pool.longest_partial(m, std::vector<int32_t>{5, 6, 9, 0}), std::make_pair(b[1], int64_t(3)));
    // At most page_size - 1, and only as far as the tokens go.
    EXPECT_EQ(pool.longest_partial(m, std::vector<int32_t>{5, 6, 7, 8, 9}).second, 3);
    EXPECT_EQ(pool.longest_partial(m, std::vector<int32_t>{5}).second, 1);
    EXPECT_EQ(pool.longest_partial(m, std::vector<int32_t>{7, 7}), std::make_pair(int32_t(-1), int64_t(0)));
    // With nothing matched, the first pages are the candidates: c's agrees on 2.
    EXPECT_EQ(pool.longest_partial({}, std::vector<int32_t>{5, 6, 0}), std::make_pair(c[0], int64_t(2)));
    // A page held for a copy is not reclaimed while held.
    for (PageList* l : {&a, &b, &c, &m}) pool.release(*l);
    const int32_t source = pool.longest_partial({}, std::vector<int32_t>{5, 6, 0}).first;
    pool.hold(source);
    PageList all;
    ASSERT_TRUE(pool.reserve(all, 7 * 4));
    EXPECT_EQ(std::count(all.begin(), all.end(), source), 0);
    EXPECT_FALSE(pool.reserve(all, 8 * 4));
    PageList pin{source};
    pool.release(pin);
    pool.release(all);
    EXPECT_EQ(pool.n_free(), 8);
}

TEST(PagePool, IdlePublishedPagesStayFindableUntilReclaimedOldestFirst) {
    PagePool pool({.n_pages = 4, .page_size = 2});
    PageList a = computed(pool, {1, 2, 3, 4});
    PageList b = computed(pool, {7, 8});
    pool.release(a);  // a's tail, then its head, become idle
    pool.release(b);
    EXPECT_EQ(pool.n_free(), 4);
    EXPECT_EQ(pool.n_idle_published(), 3);
    // Two pages: the never-published one, then the idle page released longest ago (a's tail).
    PageList c;
    ASSERT_TRUE(pool.reserve(c, 4));
    EXPECT_EQ(pool.n_idle_published(), 2);
    PageList m;
    EXPECT_EQ(pool.match(std::vector<int32_t>{1, 2, 3, 4, 0}, 10, m), 1);  // a's head survives
    pool.release(m);
    EXPECT_EQ(pool.match(std::vector<int32_t>{7, 8, 0}, 10, m), 1);
    pool.release(m);
    pool.release(c);
}

TEST(PagePool, AChainIsReclaimedFromItsTail) {
    PagePool pool({.n_pages = 3, .page_size = 1});
    PageList a = computed(pool, {5, 6, 7});
    pool.release(a);
    const std::vector<int32_t> again{5, 6, 7, 0};
    PageList m, taken;
    EXPECT_EQ(pool.match(again, 10, m), 3);
    pool.release(m);
    for (int64_t n = 1; n <= 3; ++n) {
        ASSERT_TRUE(pool.reserve(taken, n));  // one more page, reclaimed from the chain's end
        EXPECT_EQ(pool.match(again, 10, m), 3 - n);
        pool.release(m);
    }
    pool.release(taken);
    EXPECT_EQ(pool.n_free(), 3);
    EXPECT_EQ(pool.n_idle_published(), 0);
}

TEST(PagePool, ForgettingUnpublishesEveryPageButLeavesHoldersTheirPages) {
    PagePool pool({.n_pages = 4, .page_size = 2});
    PageList a = computed(pool, {1, 2, 3, 4});
    PageList b = computed(pool, {9, 9});
    pool.release(b);
    pool.forget_published();
    EXPECT_EQ(pool.n_idle_published(), 0);
    EXPECT_EQ(pool.n_free(), 2);
    PageList m;
    EXPECT_EQ(pool.match(std::vector<int32_t>{1, 2, 3, 4, 5}, 10, m), 0);
    EXPECT_EQ(pool.match(std::vector<int32_t>{9, 9, 5}, 10, m), 0);
    pool.release(a);  // a held unpublished pages: they are simply free
    EXPECT_EQ(pool.n_free(), 4);
    EXPECT_EQ(pool.n_idle_published(), 0);
}

TEST(PagePool, TheSameContentIsPublishedOnce) {
    PagePool pool({.n_pages = 4, .page_size = 2});
    PageList a = computed(pool, {1, 2});
    PageList b = computed(pool, {1, 2});  // computed twice (admitted in the same step)
    const int32_t first = a[0];
    pool.release(a);
    pool.release(b);
    EXPECT_EQ(pool.n_idle_published(), 1);
    PageList m;
    EXPECT_EQ(pool.match(std::vector<int32_t>{1, 2, 3}, 10, m), 1);
    EXPECT_EQ(m, PageList{first});
    pool.release(m);
}

}  // namespace
}  // namespace tandem::infer

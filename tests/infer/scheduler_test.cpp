// The page pool and the scheduler driven with a fake model that reads every sequence back through
// its pages: outputs match the page-free oracle alone and in a crowd, per-step limits hold, a
// full pool makes sequences wait or recompute, and removed sequences return their pages.
#include "infer/scheduler.h"

#include <gtest/gtest.h>

#include <map>

#include "common/error_message.h"
#include "fake_step_model.h"

namespace tandem::infer {
namespace {

using testing::error_message;
using testing::FakeLimits;
using testing::FakeStepModel;

struct Job {
    std::vector<int32_t> prompt;
    int64_t n_new = 0;
    int64_t join_step = 0;  // submitted before this step
    int64_t cancel_step = -1;
};

std::vector<int32_t> prompt_of(int seed, int len) {
    std::vector<int32_t> p;
    for (int i = 0; i < len; ++i) p.push_back(int32_t(testing::fake_mix(seed * 1000 + i) % 250));
    return p;
}

// Runs jobs greedily through a scheduler over `model`; returns every job's generated tokens.
struct Driver {
    FakeStepModel model;
    Scheduler sched;
    int64_t max_running = 0;
    std::vector<StepPlan> plans;

    Driver(FakeLimits limits, SchedulerOptions options)
        : model(limits), sched(options, limits.pages, limits.max_positions) {}

    std::vector<std::vector<int32_t>> run(const std::vector<Job>& jobs) {
        std::vector<std::vector<int32_t>> out(jobs.size());
        std::vector<float> row;
        for (int64_t step = 0; step < 1000; ++step) {
            for (size_t j = 0; j < jobs.size(); ++j) {
                if (jobs[j].join_step == step)
                    sched.add(SeqId(j), jobs[j].prompt,
                              int64_t(jobs[j].prompt.size()) + jobs[j].n_new - 1);
                if (jobs[j].cancel_step == step) EXPECT_TRUE(sched.remove(SeqId(j)));
            }
            const StepPlan plan = sched.schedule();
            plans.push_back(plan);
            max_running = std::max(max_running, sched.n_running());
            if (plan.empty()) {
                bool later = false;
                for (const Job& j : jobs) later |= j.join_step > step;
                if (!later) break;
                continue;
            }
            const auto logits = model.run(plan.batch);
            const int64_t V = model.vocab_size();
            for (size_t i = 0; i < plan.sampling.size(); ++i) {
                const SeqId id = plan.sampling[i];
                const float* l = logits.data() + i * V;
                const auto next = int32_t(std::max_element(l, l + V) - l);
                out[id].push_back(next);
                if (int64_t(out[id].size()) == jobs[id].n_new)
                    EXPECT_TRUE(sched.remove(id));
                else
                    sched.append(id, next);
            }
        }
        EXPECT_TRUE(sched.empty());
        EXPECT_EQ(sched.pool().n_free(), sched.pool().n_pages());
        return out;
    }
};

std::vector<int32_t> oracle(const Job& j) {
    return testing::oracle_greedy(j.prompt, j.n_new, 257);
}

TEST(Scheduler, CrowdJoiningAndLeavingMatchesTheOracle) {
    std::vector<Job> jobs;
    for (int i = 0; i < 12; ++i) jobs.push_back({prompt_of(i, 1 + (i * 7) % 19), 3 + i % 9, i / 2});
    Driver d({.max_tokens_per_step = 16, .pages = {.n_pages = 64, .page_size = 4}},
             {.max_seqs = 6, .max_tokens_per_step = 16, .prefill_chunk = 5});
    const auto out = d.run(jobs);
    for (size_t j = 0; j < jobs.size(); ++j) EXPECT_EQ(out[j], oracle(jobs[j])) << "job " << j;
    EXPECT_LE(d.max_running, 6);
    EXPECT_EQ(d.sched.n_preemptions(), 0);
}

TEST(Scheduler, StepsKeepTheTokenBudgetAndPrefillChunkAndDecodeFirst) {
    std::vector<Job> jobs;
    for (int i = 0; i < 6; ++i) jobs.push_back({prompt_of(i, 20 + i), 6, i});
    Driver d({.max_tokens_per_step = 32, .pages = {.n_pages = 64, .page_size = 4}},
             {.max_seqs = 8, .max_tokens_per_step = 9, .prefill_chunk = 4});
    const auto out = d.run(jobs);
    for (size_t j = 0; j < jobs.size(); ++j) EXPECT_EQ(out[j], oracle(jobs[j])) << "job " << j;
    bool mixed = false;
    for (const StepPlan& p : d.plans) {
        const StepBatch& b = p.batch;
        EXPECT_LE(b.size(), 9);
        // Per page_table row: its rows, and whether they decode (past the prompt) or prefill.
        std::vector<int64_t> rows(b.n_seqs, 0);
        std::vector<bool> decodes(b.n_seqs, false);
        for (int64_t n = 0; n < b.size(); ++n) {
            ++rows[b.seq_index[n]];
            const auto& prompt = jobs[p.seqs[b.seq_index[n]]].prompt;
            decodes[b.seq_index[n]] = b.positions[n] >= int64_t(prompt.size());
        }
        bool prefill_seen = false;
        for (int64_t s = 0; s < b.n_seqs; ++s) {
            if (decodes[s]) {
                EXPECT_EQ(rows[s], 1);
                EXPECT_FALSE(prefill_seen) << "a decode row after a prompt chunk";
                mixed |= prefill_seen;
            } else {
                EXPECT_LE(rows[s], 4) << "a prompt chunk longer than prefill_chunk";
                prefill_seen = true;
            }
        }
        mixed |= prefill_seen && std::count(decodes.begin(), decodes.end(), true) > 0;
    }
    EXPECT_TRUE(mixed) << "no step mixed decode rows with prompt chunks";
}

TEST(Scheduler, FullPoolMakesNewSequencesWaitAndPreemptionRecomputesTheSameOutput) {
    // 10 pages of 4: each job needs up to 5 pages, so at most two fit; long decodes outgrow the
    // pool and force preemption of the newest.
    std::vector<Job> jobs;
    for (int i = 0; i < 6; ++i) jobs.push_back({prompt_of(i + 50, 6 + i), 12, 0});
    Driver d({.max_tokens_per_step = 16, .pages = {.n_pages = 10, .page_size = 4}},
             {.max_seqs = 6, .max_tokens_per_step = 16, .prefill_chunk = 8});
    const auto out = d.run(jobs);
    for (size_t j = 0; j < jobs.size(); ++j) EXPECT_EQ(out[j], oracle(jobs[j])) << "job " << j;
    EXPECT_GT(d.sched.n_preemptions(), 0);
}

TEST(Scheduler, WaitingSequencesStartOnlyWhenPagesFree) {
    Scheduler s({.max_seqs = 4, .max_tokens_per_step = 64, .prefill_chunk = 64},
                {.n_pages = 4, .page_size = 4}, 64);
    s.add(1, prompt_of(1, 16), 16);  // the whole pool
    s.add(2, prompt_of(2, 3), 3);
    StepPlan p = s.schedule();
    EXPECT_EQ(p.seqs, std::vector<SeqId>{1});
    EXPECT_EQ(s.n_waiting(), 1);
    EXPECT_EQ(s.pool().n_free(), 0);
    EXPECT_TRUE(s.schedule().empty());  // 1 waits for its token, 2 for pages
    EXPECT_TRUE(s.remove(1));
    EXPECT_EQ(s.pool().n_free(), 4);
    p = s.schedule();
    EXPECT_EQ(p.seqs, std::vector<SeqId>{2});
    EXPECT_EQ(p.sampling, std::vector<SeqId>{2});
}

TEST(Scheduler, RemovingWaitingOrRunningSequencesFreesTheirPages) {
    std::vector<Job> jobs;
    for (int i = 0; i < 8; ++i) {
        Job j{prompt_of(i + 80, 9), 10, i % 3};
        if (i % 2 == 1) j.cancel_step = 1 + i;  // some while waiting, some while running
        jobs.push_back(j);
    }
    Driver d({.max_tokens_per_step = 16, .pages = {.n_pages = 12, .page_size = 4}},
             {.max_seqs = 3, .max_tokens_per_step = 16, .prefill_chunk = 4});
    const auto out = d.run(jobs);  // checks every page is back at the end
    for (size_t j = 0; j < jobs.size(); j += 2) EXPECT_EQ(out[j], oracle(jobs[j])) << "job " << j;
}

// Jobs whose prompts share prefixes: one system prompt and different questions, the same
// prompt asked again (one at a time and at once), a prompt that is a whole number of pages.
std::vector<Job> shared_prefix_jobs() {
    const std::vector<int32_t> system = prompt_of(7, 10);
    std::vector<Job> jobs;
    for (int i = 0; i < 10; ++i) {
        std::vector<int32_t> p = system;
        const std::vector<int32_t> question = prompt_of(100 + i % 4, 1 + i % 6);
        p.insert(p.end(), question.begin(), question.end());
        jobs.push_back({p, 4 + i % 5, i});
    }
    for (int i = 0; i < 4; ++i) jobs.push_back({prompt_of(9, 12), 6, 3});  // at once, 3 pages
    jobs.push_back({prompt_of(9, 12), 6, 20});                             // again, later
    return jobs;
}

TEST(Scheduler, PrefixCacheSharesPagesAndGivesTheSameOutput) {
    const std::vector<Job> jobs = shared_prefix_jobs();
    Driver d({.max_tokens_per_step = 32, .pages = {.n_pages = 64, .page_size = 4}},
             {.max_seqs = 8, .max_tokens_per_step = 32, .prefill_chunk = 6, .prefix_cache = true});
    const auto out = d.run(jobs);  // the fake model reads shared pages back: a wrong one shows
    for (size_t j = 0; j < jobs.size(); ++j) EXPECT_EQ(out[j], oracle(jobs[j])) << "job " << j;
    EXPECT_GT(d.sched.n_prefix_hits(), 60);
    // Fewer rows than without the cache, with the same outputs.
    Driver plain({.max_tokens_per_step = 32, .pages = {.n_pages = 64, .page_size = 4}},
                 {.max_seqs = 8, .max_tokens_per_step = 32, .prefill_chunk = 6});
    EXPECT_EQ(plain.run(jobs), out);
    auto rows = [](const Driver& x) {
        int64_t n = 0;
        for (const StepPlan& p : x.plans) n += p.batch.size();
        return n;
    };
    EXPECT_EQ(rows(plain) - rows(d), d.sched.n_prefix_hits());
}

TEST(Scheduler, PrefixCacheUnderAFullPoolWithPreemption) {
    // 12 pages of 4: every job needs up to 5; the cache is reclaimed and sequences recomputed.
    std::vector<Job> jobs = shared_prefix_jobs();
    for (Job& j : jobs) j.n_new += 8;
    Driver d({.max_tokens_per_step = 16, .pages = {.n_pages = 12, .page_size = 4}},
             {.max_seqs = 6, .max_tokens_per_step = 16, .prefill_chunk = 8, .prefix_cache = true});
    const auto out = d.run(jobs);
    for (size_t j = 0; j < jobs.size(); ++j) EXPECT_EQ(out[j], oracle(jobs[j])) << "job " << j;
    EXPECT_GT(d.sched.n_preemptions(), 0);
    EXPECT_GT(d.sched.n_prefix_hits(), 0);
}

TEST(Scheduler, ASequenceWaitsForTheRunningOneComputingItsPrefix) {
    Scheduler s({.max_seqs = 4, .max_tokens_per_step = 64, .prefill_chunk = 4, .prefix_cache = true},
                {.n_pages = 16, .page_size = 4}, 64);
    const std::vector<int32_t> prompt = prompt_of(3, 10);
    s.add(1, prompt, 12);
    s.add(2, prompt, 12);
    std::vector<int64_t> first_rows;  // sequence 2's first row position at each step, -1: absent
    for (int step = 0; step < 4; ++step) {
        const StepPlan p = s.schedule();
        for (size_t i = 0; i < p.seqs.size(); ++i)
            if (p.seqs[i] == 2) {
                const auto row = std::find(p.batch.seq_index.begin(), p.batch.seq_index.end(), int32_t(i));
                first_rows.push_back(p.batch.positions[row - p.batch.seq_index.begin()]);
            }
        for (const SeqId id : p.sampling) s.append(id, 5);
    }
    // 1 computes [0,4), [4,8), [8,10) in three steps; 2 starts after them at position 8.
    ASSERT_FALSE(first_rows.empty());
    EXPECT_EQ(first_rows.front(), 8);
    EXPECT_EQ(s.n_prefix_hits(), 8);
}

TEST(Scheduler, ARepeatedPromptRunsOnlyItsLastTokenFromACopyOfTheCachedPage) {
    // The first asking fills pages [0,4) [4,8) [8,12) [12,16) with its prompt and reply; the
    // second takes two pages whole and positions 8 of the third from a copy, and runs 9 alone.
    const std::vector<int32_t> prompt = prompt_of(6, 10);
    const std::vector<Job> jobs = {{prompt, 7, 0}, {prompt, 7, 20}, {prompt_of(7, 3), 7, 20}};
    Driver d({.max_tokens_per_step = 32, .pages = {.n_pages = 16, .page_size = 4}},
             {.max_seqs = 4, .max_tokens_per_step = 32, .prefill_chunk = 16, .prefix_cache = true});
    const auto out = d.run(jobs);  // the fake model reads the copy back: a wrong copy shows
    for (size_t j = 0; j < jobs.size(); ++j) EXPECT_EQ(out[j], oracle(jobs[j])) << "job " << j;
    EXPECT_EQ(d.sched.n_prefix_hits(), 9);
    bool seen = false;
    for (const StepPlan& p : d.plans)
        for (size_t i = 0; i < p.seqs.size(); ++i)
            if (p.seqs[i] == 1 && !seen) {
                seen = true;
                const auto row = std::find(p.batch.seq_index.begin(), p.batch.seq_index.end(), int32_t(i));
                EXPECT_EQ(p.batch.positions[row - p.batch.seq_index.begin()], 9);
                ASSERT_EQ(p.batch.page_copies.size(), 1u);
                EXPECT_EQ(p.batch.page_copies[0].second, p.batch.page_table[i * p.batch.pages_per_seq + 2]);
            }
    EXPECT_TRUE(seen);
}

TEST(Scheduler, ForgettingThePrefixCacheStopsSharing) {
    Scheduler s({.max_seqs = 4, .max_tokens_per_step = 64, .prefill_chunk = 64, .prefix_cache = true},
                {.n_pages = 16, .page_size = 4}, 64);
    const std::vector<int32_t> prompt = prompt_of(4, 9);
    s.add(1, prompt, 9);
    s.schedule();
    s.remove(1);
    s.forget_prefix_cache();
    s.add(2, prompt, 9);
    const StepPlan p = s.schedule();
    EXPECT_EQ(p.batch.size(), 9);
    EXPECT_EQ(s.n_prefix_hits(), 0);
    EXPECT_EQ(s.pool().n_idle_published(), 0);
}

TEST(Scheduler, RefusesASequenceLargerThanThePool) {
    Scheduler s({}, {.n_pages = 3, .page_size = 4}, 64);
    const std::string m = error_message([&] { s.add(1, prompt_of(1, 5), 13); });
    EXPECT_NE(m.find("needs 4 pages of 4 but the whole KV cache holds 3"), std::string::npos) << m;
    EXPECT_TRUE(s.empty());
}

TEST(Scheduler, RejectsLimitsBelowOne) {
    const PageGeometry g{4, 4};
    EXPECT_NE(error_message([&] { Scheduler({.max_seqs = 0}, g, 8); }).find("max_seqs"),
              std::string::npos);
    EXPECT_NE(error_message([&] { Scheduler({.max_tokens_per_step = 0}, g, 8); })
                  .find("max_tokens_per_step"),
              std::string::npos);
    EXPECT_NE(error_message([&] { Scheduler({.prefill_chunk = 0}, g, 8); }).find("prefill_chunk"),
              std::string::npos);
}

}  // namespace
}  // namespace tandem::infer

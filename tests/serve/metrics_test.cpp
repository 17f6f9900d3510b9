// The metrics registry: the exact Prometheus text of counters, gauges and histograms (bucket
// edges, escaping, label order), series shared between callers, exact totals under concurrent
// updates, and the series ServerMetrics exports.
#include "serve/metrics.h"

#include <gtest/gtest.h>

#include <thread>

namespace tandem::serve {
namespace {

TEST(Metrics, RendersPrometheusTextExactly) {
    MetricsRegistry r;
    r.counter("app_requests_total", "Requests.", {{"code", "200"}}).add(3);
    r.counter("app_requests_total", "ignored: the first help stays", {{"code", "404"}}).add();
    r.gauge("app_queue", "Waiting requests.").set(2.5);
    Histogram& h = r.histogram("app_latency_seconds", "Latency.", {0.1, 0.5, 1});
    h.observe(0.05);
    h.observe(0.1);  // on a bound: counted in that bucket (le means <=)
    h.observe(0.7);
    h.observe(4);
    EXPECT_EQ(r.render(),
              "# HELP app_requests_total Requests.\n"
              "# TYPE app_requests_total counter\n"
              "app_requests_total{code=\"200\"} 3\n"
              "app_requests_total{code=\"404\"} 1\n"
              "# HELP app_queue Waiting requests.\n"
              "# TYPE app_queue gauge\n"
              "app_queue 2.5\n"
              "# HELP app_latency_seconds Latency.\n"
              "# TYPE app_latency_seconds histogram\n"
              "app_latency_seconds_bucket{le=\"0.1\"} 2\n"
              "app_latency_seconds_bucket{le=\"0.5\"} 2\n"
              "app_latency_seconds_bucket{le=\"1\"} 3\n"
              "app_latency_seconds_bucket{le=\"+Inf\"} 4\n"
              "app_latency_seconds_sum 4.85\n"
              "app_latency_seconds_count 4\n");
}

TEST(Metrics, LabelledHistogramAndEscaping) {
    MetricsRegistry r;
    r.histogram("h", "Line one\nback\\slash", {1}, {{"path", "a\"b\\c\nd"}}).observe(0.5);
    EXPECT_EQ(r.render(),
              "# HELP h Line one\\nback\\\\slash\n"
              "# TYPE h histogram\n"
              "h_bucket{path=\"a\\\"b\\\\c\\nd\",le=\"1\"} 1\n"
              "h_bucket{path=\"a\\\"b\\\\c\\nd\",le=\"+Inf\"} 1\n"
              "h_sum{path=\"a\\\"b\\\\c\\nd\"} 0.5\n"
              "h_count{path=\"a\\\"b\\\\c\\nd\"} 1\n");
}

TEST(Metrics, SameNameAndLabelsIsTheSameSeries) {
    MetricsRegistry r;
    Counter& a = r.counter("c_total", "C.", {{"x", "1"}});
    Counter& b = r.counter("c_total", "C.", {{"x", "1"}});
    Counter& other = r.counter("c_total", "C.", {{"x", "2"}});
    EXPECT_EQ(&a, &b);
    EXPECT_NE(&a, &other);
    Gauge& g = r.gauge("g", "G.");
    g.add(1.5);
    g.add(-0.5);
    EXPECT_DOUBLE_EQ(r.gauge("g", "G.").value(), 1.0);
}

TEST(Metrics, ConcurrentUpdatesAreExact) {
    MetricsRegistry r;
    Counter& c = r.counter("c_total", "C.");
    Histogram& h = r.histogram("h", "H.", {0.5});
    std::vector<std::thread> threads;
    for (int t = 0; t < 8; ++t)
        threads.emplace_back([&, t] {
            for (int i = 0; i < 20000; ++i) {
                c.add();
                h.observe(i % 2 ? 0.25 : 1.0);
                // New series created while others render and update.
                if (i % 5000 == 0) r.counter("c_total", "C.", {{"t", std::to_string(t)}}).add();
                if (i % 7000 == 0) (void)r.render();
            }
        });
    for (std::thread& t : threads) t.join();
    EXPECT_EQ(c.value(), 160000u);
    const Histogram::Snapshot s = h.snapshot();
    EXPECT_EQ(s.count, 160000u);
    EXPECT_EQ(s.cumulative, (std::vector<uint64_t>{80000, 160000}));
    EXPECT_DOUBLE_EQ(s.sum, 80000 * 0.25 + 80000 * 1.0);
    EXPECT_NE(r.render().find("c_total{t=\"7\"} 4\n"), std::string::npos);
}

TEST(Metrics, ServerMetricsExportTheIssuesSeries) {
    ServerMetrics m;
    m.count_request("/v1/chat/completions", 200);
    m.count_request("/v1/chat/completions", 200);
    m.count_request("/v1/completions", 400);
    m.prompt_tokens.add(12);
    m.generated_tokens.add(30);
    m.queue_depth.set(3);
    m.running_sequences.set(16);
    m.kv_pages_in_use.set(100);
    m.kv_pages_total.set(512);
    m.kv_pages_cached.set(40);
    m.prompt_tokens_cached.add(640);
    m.time_to_first_token.observe(0.2);
    m.time_per_output_token.observe(0.03);
    const std::string text = m.render();
    for (const char* line : {
             "# TYPE tandem_requests_total counter\n",
             "tandem_requests_total{endpoint=\"/v1/chat/completions\",status=\"200\"} 2\n",
             "tandem_requests_total{endpoint=\"/v1/completions\",status=\"400\"} 1\n",
             "tandem_prompt_tokens_total 12\n",
             "tandem_generated_tokens_total 30\n",
             "# TYPE tandem_queue_depth gauge\n",
             "tandem_queue_depth 3\n",
             "tandem_running_sequences 16\n",
             "tandem_kv_pages_in_use 100\n",
             "tandem_kv_pages_total 512\n",
             "tandem_kv_pages_cached 40\n",
             "tandem_prompt_tokens_cached_total 640\n",
             "# TYPE tandem_time_to_first_token_seconds histogram\n",
             "tandem_time_to_first_token_seconds_bucket{le=\"0.1\"} 0\n",
             "tandem_time_to_first_token_seconds_bucket{le=\"0.25\"} 1\n",
             "tandem_time_to_first_token_seconds_count 1\n",
             "tandem_time_per_output_token_seconds_bucket{le=\"0.035\"} 1\n",
             "tandem_time_per_output_token_seconds_sum 0.03\n",
         })
        EXPECT_NE(text.find(line), std::string::npos) << "missing: " << line << "in:\n" << text;
    // Every family has its HELP line before its TYPE line.
    size_t n_help = 0, n_type = 0;
    for (size_t at = 0; (at = text.find("# HELP ", at)) != std::string::npos; ++at) ++n_help;
    for (size_t at = 0; (at = text.find("# TYPE ", at)) != std::string::npos; ++at) ++n_type;
    EXPECT_EQ(n_help, 11u);
    EXPECT_EQ(n_type, 11u);
}

}  // namespace
}  // namespace tandem::serve

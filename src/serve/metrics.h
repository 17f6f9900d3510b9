// A small thread-safe registry of counters, gauges and histograms, rendered in Prometheus' text
// exposition format (version 0.0.4) for GET /metrics, and ServerMetrics: the series `tandem serve`
// exports. Series are created on first use and live as long as the registry; updating one is a
// few atomic operations (a histogram takes its own lock), never the registry's lock.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace tandem::serve {

using Labels = std::vector<std::pair<std::string, std::string>>;  // in the order rendered

class Counter {
   public:
    void add(uint64_t n = 1) { value_.fetch_add(n, std::memory_order_relaxed); }
    uint64_t value() const { return value_.load(std::memory_order_relaxed); }

   private:
    std::atomic<uint64_t> value_{0};
};

class Gauge {
   public:
    void set(double v) { value_.store(v, std::memory_order_relaxed); }
    void add(double d) { value_.fetch_add(d, std::memory_order_relaxed); }
    double value() const { return value_.load(std::memory_order_relaxed); }

   private:
    std::atomic<double> value_{0};
};

class Histogram {
   public:
    // `bounds`: the upper bounds of the buckets, increasing; +Inf is implied.
    explicit Histogram(std::vector<double> bounds);
    void observe(double v);

    struct Snapshot {
        std::vector<uint64_t> cumulative;  // per bound, then +Inf
        double sum = 0;
        uint64_t count = 0;
    };
    // Consistent: count equals the +Inf bucket even while other threads observe.
    Snapshot snapshot() const;
    const std::vector<double>& bounds() const { return bounds_; }

   private:
    std::vector<double> bounds_;
    mutable std::mutex mutex_;
    std::vector<uint64_t> counts_;  // per bucket (not cumulative), +Inf last
    double sum_ = 0;
};

class MetricsRegistry {
   public:
    // The series (name, labels), created on first call; later calls return the same one (help
    // and bounds then come from the first). A name is one type: asking for it as another is a
    // tandem bug (TANDEM_ASSERT), as are names and label names outside [a-zA-Z_:][a-zA-Z0-9_:]*.
    Counter& counter(std::string_view name, std::string_view help, const Labels& labels = {});
    Gauge& gauge(std::string_view name, std::string_view help, const Labels& labels = {});
    Histogram& histogram(std::string_view name, std::string_view help, std::vector<double> bounds,
                         const Labels& labels = {});

    // Every family in the order first registered: # HELP, # TYPE, then its samples.
    std::string render() const;

   private:
    enum class Type { Counter, Gauge, Histogram };
    struct Series {
        Labels labels;
        std::unique_ptr<Counter> counter;
        std::unique_ptr<Gauge> gauge;
        std::unique_ptr<Histogram> histogram;
    };
    struct Family {
        std::string name, help;
        Type type;
        std::vector<std::unique_ptr<Series>> series;
    };
    Series& find_or_add(std::string_view name, std::string_view help, Type type,
                        const Labels& labels, std::vector<double>* bounds);

    mutable std::mutex mutex_;
    std::vector<std::unique_ptr<Family>> families_;
    std::map<std::string, Family*, std::less<>> by_name_;
};

// Bucket bounds, in seconds, for the two latency histograms.
std::vector<double> time_to_first_token_buckets();  // 5 ms .. 60 s
std::vector<double> per_token_latency_buckets();    // 1 ms .. 2 s

// The series `tandem serve` exports (names as in docs/SERVING.md):
//   tandem_requests_total{endpoint, status}      counter
//   tandem_prompt_tokens_total                   counter
//   tandem_generated_tokens_total                counter
//   tandem_queue_depth                           gauge: requests waiting for a slot
//   tandem_running_sequences                     gauge
//   tandem_kv_pages_in_use, tandem_kv_pages_total  gauges
//   tandem_kv_pages_cached                       gauge: prefix-cache pages no sequence holds
//   tandem_prompt_tokens_cached_total            counter: prompt tokens the prefix cache served
//   tandem_time_to_first_token_seconds           histogram
//   tandem_time_per_output_token_seconds         histogram: gap between a sequence's tokens
class ServerMetrics {
    // First, so that it exists before the references below are bound to its series.
    std::unique_ptr<MetricsRegistry> registry_;

   public:
    ServerMetrics();

    void count_request(std::string_view endpoint, int status);
    Counter& prompt_tokens;
    Counter& generated_tokens;
    Gauge& queue_depth;
    Gauge& running_sequences;
    Gauge& kv_pages_in_use;
    Gauge& kv_pages_total;
    Gauge& kv_pages_cached;
    Counter& prompt_tokens_cached;
    Histogram& time_to_first_token;
    Histogram& time_per_output_token;

    MetricsRegistry& registry() { return *registry_; }
    std::string render() const { return registry_->render(); }
};

}  // namespace tandem::serve

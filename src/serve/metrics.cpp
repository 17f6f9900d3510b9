// Prometheus' text exposition format, as this file writes it:
//   # HELP name help text (\ and newline escaped)
//   # TYPE name counter|gauge|histogram
//   name{label="value",...} 42          (label values: \, " and newline escaped)
//   name_bucket{...,le="0.5"} 3         histograms: cumulative buckets, then le="+Inf",
//   name_sum{...} 1.25                  the sum and the count
//   name_count{...} 4
// Numbers are the shortest decimal that reads back the same (0.005, 3, 1e-05).
#include "serve/metrics.h"

#include <algorithm>
#include <charconv>
#include <cmath>

#include "core/error.h"

namespace tandem::serve {

namespace {

bool is_valid_name(std::string_view name) {
    auto head = [](char c) {
        return std::isalpha(static_cast<unsigned char>(c)) || c == '_' || c == ':';
    };
    auto tail = [&](char c) { return head(c) || std::isdigit(static_cast<unsigned char>(c)); };
    return !name.empty() && head(name[0]) && std::all_of(name.begin() + 1, name.end(), tail);
}

std::string number(double v) {
    if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
    if (std::isnan(v)) return "NaN";
    char text[32];
    return std::string(text, std::to_chars(text, text + sizeof text, v).ptr);
}

std::string escape(std::string_view s, bool quote) {
    std::string out;
    for (char c : s) {
        if (c == '\\')
            out += "\\\\";
        else if (c == '\n')
            out += "\\n";
        else if (c == '"' && quote)
            out += "\\\"";
        else
            out += c;
    }
    return out;
}

// {a="x",b="y"} with `extra` (le="...") last; "" when there are no labels at all.
std::string label_text(const Labels& labels, std::string_view extra = {}) {
    std::string out;
    for (const auto& [key, value] : labels)
        out += (out.empty() ? "" : ",") + key + "=\"" + escape(value, true) + "\"";
    if (!extra.empty()) out += (out.empty() ? "" : ",") + std::string(extra);
    return out.empty() ? "" : "{" + out + "}";
}

}  // namespace

Histogram::Histogram(std::vector<double> bounds)
    : bounds_(std::move(bounds)), counts_(bounds_.size() + 1, 0) {
    TANDEM_ASSERT(std::is_sorted(bounds_.begin(), bounds_.end()) &&
                      std::adjacent_find(bounds_.begin(), bounds_.end()) == bounds_.end(),
                  bounds_.size());
}

void Histogram::observe(double v) {
    // The first bucket whose bound is >= v (Prometheus' buckets are "less or equal").
    const size_t bucket = std::lower_bound(bounds_.begin(), bounds_.end(), v) - bounds_.begin();
    std::lock_guard lock(mutex_);
    ++counts_[bucket];
    sum_ += v;
}

Histogram::Snapshot Histogram::snapshot() const {
    Snapshot s;
    std::lock_guard lock(mutex_);
    uint64_t total = 0;
    for (uint64_t c : counts_) s.cumulative.push_back(total += c);
    s.sum = sum_;
    s.count = total;
    return s;
}

MetricsRegistry::Series& MetricsRegistry::find_or_add(std::string_view name, std::string_view help,
                                                      Type type, const Labels& labels,
                                                      std::vector<double>* bounds) {
    TANDEM_ASSERT(is_valid_name(name), name);
    std::lock_guard lock(mutex_);
    auto it = by_name_.find(name);
    Family* family = it == by_name_.end() ? nullptr : it->second;
    if (!family) {
        families_.push_back(
            std::make_unique<Family>(Family{std::string(name), std::string(help), type, {}}));
        family = families_.back().get();
        by_name_.emplace(family->name, family);
    }
    TANDEM_ASSERT(family->type == type, name, int(family->type), int(type));
    for (const std::unique_ptr<Series>& s : family->series)
        if (s->labels == labels) return *s;
    for (const auto& [key, value] : labels) TANDEM_ASSERT(is_valid_name(key) && key != "le", key);
    auto series = std::make_unique<Series>();
    series->labels = labels;
    if (type == Type::Counter) series->counter = std::make_unique<Counter>();
    if (type == Type::Gauge) series->gauge = std::make_unique<Gauge>();
    if (type == Type::Histogram)
        series->histogram = std::make_unique<Histogram>(std::move(*bounds));
    family->series.push_back(std::move(series));
    return *family->series.back();
}

Counter& MetricsRegistry::counter(std::string_view name, std::string_view help,
                                  const Labels& labels) {
    return *find_or_add(name, help, Type::Counter, labels, nullptr).counter;
}

Gauge& MetricsRegistry::gauge(std::string_view name, std::string_view help, const Labels& labels) {
    return *find_or_add(name, help, Type::Gauge, labels, nullptr).gauge;
}

Histogram& MetricsRegistry::histogram(std::string_view name, std::string_view help,
                                      std::vector<double> bounds, const Labels& labels) {
    return *find_or_add(name, help, Type::Histogram, labels, &bounds).histogram;
}

std::string MetricsRegistry::render() const {
    static constexpr const char* kTypeNames[] = {"counter", "gauge", "histogram"};
    std::string out;
    std::lock_guard lock(mutex_);
    for (const std::unique_ptr<Family>& f : families_) {
        out += "# HELP " + f->name + " " + escape(f->help, false) + "\n";
        out += "# TYPE " + f->name + " " + kTypeNames[int(f->type)] + "\n";
        for (const std::unique_ptr<Series>& s : f->series) {
            if (s->counter)
                out += f->name + label_text(s->labels) + " " + std::to_string(s->counter->value()) +
                       "\n";
            if (s->gauge)
                out += f->name + label_text(s->labels) + " " + number(s->gauge->value()) + "\n";
            if (!s->histogram) continue;
            const Histogram::Snapshot snap = s->histogram->snapshot();
            const std::vector<double>& bounds = s->histogram->bounds();
            for (size_t i = 0; i <= bounds.size(); ++i) {
                const std::string le =
                    "le=\"" + (i < bounds.size() ? number(bounds[i]) : std::string("+Inf")) + "\"";
                out += f->name + "_bucket" + label_text(s->labels, le) + " " +
                       std::to_string(snap.cumulative[i]) + "\n";
            }
            out += f->name + "_sum" + label_text(s->labels) + " " + number(snap.sum) + "\n";
            out += f->name + "_count" + label_text(s->labels) + " " + std::to_string(snap.count) +
                   "\n";
        }
    }
    return out;
}

std::vector<double> time_to_first_token_buckets() {
    return {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60};
}

std::vector<double> per_token_latency_buckets() {
    return {0.001, 0.0025, 0.005, 0.01, 0.02, 0.035, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1, 2};
}

ServerMetrics::ServerMetrics()
    : registry_(std::make_unique<MetricsRegistry>()),
      prompt_tokens(registry_->counter("tandem_prompt_tokens_total",
                                       "Prompt tokens of the requests admitted.")),
      generated_tokens(registry_->counter("tandem_generated_tokens_total",
                                          "Tokens generated, over all sequences.")),
      queue_depth(
          registry_->gauge("tandem_queue_depth", "Requests waiting for the engine to admit them.")),
      running_sequences(
          registry_->gauge("tandem_running_sequences", "Sequences the engine is decoding.")),
      kv_pages_in_use(
          registry_->gauge("tandem_kv_pages_in_use", "KV-cache pages held by sequences.")),
      kv_pages_total(registry_->gauge("tandem_kv_pages_total", "KV-cache pages in the pool.")),
      kv_pages_cached(registry_->gauge(
          "tandem_kv_pages_cached",
          "KV-cache pages no sequence holds, kept for the prompt prefixes they hold.")),
      prompt_tokens_cached(registry_->counter(
          "tandem_prompt_tokens_cached_total",
          "Prompt tokens whose keys and values came from the prefix cache, not computed.")),
      time_to_first_token(
          registry_->histogram("tandem_time_to_first_token_seconds",
                               "Time from a request's arrival to its first generated token.",
                               time_to_first_token_buckets())),
      time_per_output_token(registry_->histogram(
          "tandem_time_per_output_token_seconds",
          "Time between two consecutive tokens of one sequence.", per_token_latency_buckets())) {}

// A series per (endpoint, status) seen: tandem_requests_total appears with the first request.
void ServerMetrics::count_request(std::string_view endpoint, int status) {
    registry_
        ->counter("tandem_requests_total", "Requests answered, by endpoint and HTTP status.",
                  {{"endpoint", std::string(endpoint)}, {"status", std::to_string(status)}})
        .add();
}

}  // namespace tandem::serve

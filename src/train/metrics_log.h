// metrics.jsonl: one JSON object per line, appended as training goes. On resume the lines after
// the checkpoint's step are dropped, so the file reads as one uninterrupted run.
#pragma once

#include <cstdint>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace tandem::train {

class MetricsLog {
public:
    // Opens `path` for appending, first removing every line whose "step" is above
    // `keep_up_to_step` (and a last line cut short by a crash).
    MetricsLog(std::string path, int64_t keep_up_to_step);
    ~MetricsLog();
    MetricsLog(const MetricsLog&) = delete;
    MetricsLog& operator=(const MetricsLog&) = delete;

    void append(const nlohmann::json& record);  // one line, flushed
    const std::string& path() const { return path_; }

private:
    std::string path_;
    std::FILE* file_ = nullptr;
};

std::vector<nlohmann::json> read_metrics(const std::string& path);

}  // namespace tandem::train

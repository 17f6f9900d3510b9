// Appending metrics lines, and trimming them back to a checkpoint on resume.
#include "train/metrics_log.h"

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/error.h"
#include "io/atomic_file.h"

namespace tandem::train {

std::vector<nlohmann::json> read_metrics(const std::string& path) {
    std::vector<nlohmann::json> records;
    std::ifstream in(path);
    std::string line;
    while (std::getline(in, line)) {
        auto record = nlohmann::json::parse(line, nullptr, false);
        if (!record.is_discarded() && record.is_object()) records.push_back(std::move(record));
    }
    return records;
}

MetricsLog::MetricsLog(std::string path, int64_t keep_up_to_step) : path_(std::move(path)) {
    if (std::filesystem::exists(path_)) {
        std::ostringstream kept;
        for (const auto& record : read_metrics(path_))
            if (record.value("step", int64_t{0}) <= keep_up_to_step) kept << record.dump() << '\n';
        io::write_file_atomic(path_, kept.str());
    }
    file_ = std::fopen(path_.c_str(), "a");
    if (!file_) throw Error(path_, ": cannot open for appending: ", std::strerror(errno));
}

MetricsLog::~MetricsLog() {
    if (file_) std::fclose(file_);
}

void MetricsLog::append(const nlohmann::json& record) {
    const std::string line = record.dump() + "\n";
    if (std::fwrite(line.data(), 1, line.size(), file_) != line.size() || std::fflush(file_) != 0)
        throw Error(path_, ": write failed: ", std::strerror(errno));
}

}  // namespace tandem::train

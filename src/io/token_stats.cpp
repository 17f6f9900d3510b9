// Token frequency counts over the shards of one split.
#include "io/token_stats.h"

#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <vector>

#include "core/error.h"
#include "io/atomic_file.h"
#include "io/token_shards.h"

namespace tandem::io {

double unigram_entropy(const std::string& data_dir, const std::string& split) {
    const std::string meta_path = (std::filesystem::path(data_dir) / "meta.json").string();
    nlohmann::json meta;
    try {
        meta = nlohmann::json::parse(read_file(meta_path));
    } catch (const nlohmann::json::exception& e) {
        throw Error(meta_path, ": not valid JSON: ", e.what());
    }
    std::vector<uint64_t> counts(meta.at("vocab_size").get<size_t>(), 0);
    uint64_t total = 0;
    std::vector<int32_t> chunk(1 << 16);
    for (const auto& shard_meta : meta.at("shards")) {
        if (shard_meta.value("split", "") != split) continue;
        MappedShard shard((std::filesystem::path(data_dir) / shard_meta.at("file").get<std::string>()).string());
        for (uint64_t at = 0; at < shard.n_tokens(); at += chunk.size()) {
            const size_t n = std::min<uint64_t>(chunk.size(), shard.n_tokens() - at);
            shard.copy_tokens(at, std::span(chunk).first(n));
            for (size_t i = 0; i < n; ++i) {
                if (chunk[i] < 0 || static_cast<size_t>(chunk[i]) >= counts.size())
                    throw Error(shard.path(), ": token id ", chunk[i], " at ", at + i, " is outside the vocabulary of ", counts.size());
                ++counts[static_cast<size_t>(chunk[i])];
            }
            total += n;
        }
    }
    if (total == 0) throw Error(meta_path, ": the ", split, " split holds no tokens");
    double entropy = 0;
    for (uint64_t c : counts)
        if (c) entropy -= double(c) / double(total) * std::log(double(c) / double(total));
    return entropy;
}

}  // namespace tandem::io

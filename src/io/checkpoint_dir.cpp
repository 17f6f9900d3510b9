// Atomic checkpoint directories and their manifests.
#include "io/checkpoint_dir.h"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "core/checksum.h"
#include "core/error.h"
#include "core/log.h"
#include "io/atomic_file.h"
#include "io/mapped_file.h"

namespace tandem::io {

namespace fs = std::filesystem;

namespace {

constexpr const char* kManifest = "MANIFEST.json";

std::string step_dir_name(int64_t step) { return "step-" + std::to_string(step); }

// Hashed in pieces whose pages are dropped once read: verifying a checkpoint reads its optimizer
// state too (twice the weights), which would otherwise sit in the process's resident memory.
uint64_t file_checksum(const std::string& path) {
    MappedFile file(path);
    Xxh3Stream hash;
    constexpr size_t kPiece = 64u << 20;
    for (size_t at = 0; at < file.size(); at += kPiece) {
        const size_t n = std::min(kPiece, file.size() - at);
        hash.update(file.data() + at, n);
        release_pages(file.data() + at, n);
    }
    return hash.digest();
}

}  // namespace

CheckpointDirWriter::CheckpointDirWriter(const std::string& parent, int64_t step)
    : CheckpointDirWriter((fs::path(parent) / step_dir_name(step)).string()) {}

CheckpointDirWriter::CheckpointDirWriter(const std::string& final_dir)
    : parent_(fs::absolute(final_dir).parent_path().string()),
      final_dir_(final_dir),
      temp_dir_(final_dir_ + ".tmp-" + std::to_string(::getpid())) {
    std::error_code ec;
    fs::remove_all(temp_dir_, ec);  // left over by an earlier crash of this same pid
    fs::create_directories(temp_dir_, ec);
    if (ec) throw Error(temp_dir_, ": cannot create checkpoint directory: ", ec.message());
}

CheckpointDirWriter::~CheckpointDirWriter() {
    if (!committed_) {
        std::error_code ec;
        fs::remove_all(temp_dir_, ec);
    }
}

std::string CheckpointDirWriter::file(const std::string& name) const {
    return (fs::path(temp_dir_) / name).string();
}

void CheckpointDirWriter::note_checksum(const std::string& name, uint64_t xxh3) { known_checksums_[name] = xxh3; }

std::string CheckpointDirWriter::commit() {
    nlohmann::ordered_json files = nlohmann::ordered_json::array();
    std::vector<std::string> names;
    for (const auto& entry : fs::directory_iterator(temp_dir_))
        if (entry.is_regular_file()) names.push_back(entry.path().filename().string());
    std::sort(names.begin(), names.end());
    for (const auto& name : names) {
        const std::string path = file(name);
        const auto known = known_checksums_.find(name);
        const uint64_t sum = known != known_checksums_.end() ? known->second : file_checksum(path);
        files.push_back({{"file", name}, {"size", fs::file_size(path)}, {"xxh3", hex64(sum)}});
    }
    // Each file was fsynced by its AtomicFile; the manifest is written (and fsynced) last, so a
    // manifest on disk implies every file it lists is complete.
    write_file_atomic(file(kManifest), nlohmann::ordered_json{{"files", files}}.dump(2) + "\n");
    fsync_directory(temp_dir_);

    std::error_code ec;
    if (fs::exists(final_dir_)) {
        // Re-saving a step (after a resume): move the old one aside first so that a crash in
        // between still leaves one complete copy on disk.
        const std::string old = final_dir_ + ".old-" + std::to_string(::getpid());
        fs::rename(final_dir_, old, ec);
        if (ec) throw Error(final_dir_, ": cannot move the previous checkpoint aside: ", ec.message());
        fs::rename(temp_dir_, final_dir_, ec);
        if (ec) throw Error(final_dir_, ": cannot rename ", temp_dir_, " into place: ", ec.message());
        fs::remove_all(old, ec);
    } else {
        fs::rename(temp_dir_, final_dir_, ec);
        if (ec) throw Error(final_dir_, ": cannot rename ", temp_dir_, " into place: ", ec.message());
    }
    committed_ = true;
    fsync_directory(parent_);
    return final_dir_;
}

void verify_checkpoint_dir(const std::string& dir) {
    const std::string manifest_path = (fs::path(dir) / kManifest).string();
    if (!fs::exists(manifest_path))
        throw Error(dir, ": no ", kManifest, " (the checkpoint was not completed)");
    nlohmann::json manifest;
    try {
        manifest = nlohmann::json::parse(io::read_file(manifest_path));
    } catch (const nlohmann::json::exception& e) {
        throw Error(manifest_path, ": not valid JSON: ", e.what());
    }
    if (!manifest.contains("files") || !manifest["files"].is_array())
        throw Error(manifest_path, ": has no \"files\" list");
    for (const auto& entry : manifest["files"]) {
        const std::string name = entry.value("file", "");
        const std::string path = (fs::path(dir) / name).string();
        if (name.empty() || !fs::exists(path)) throw Error(path, ": listed in the manifest but missing");
        const uint64_t size = fs::file_size(path), want_size = entry.value("size", uint64_t{0});
        if (size != want_size)
            throw Error(path, ": is ", size, " bytes but the manifest says ", want_size, " (truncated?)");
        const std::string sum = hex64(file_checksum(path)), want_sum = entry.value("xxh3", "");
        if (sum != want_sum)
            throw Error(path, ": checksum ", sum, " does not match the manifest's ", want_sum, " (corrupted)");
    }
}

std::vector<CheckpointInfo> list_checkpoints(const std::string& parent) {
    std::vector<CheckpointInfo> out;
    std::error_code ec;
    if (!fs::is_directory(parent, ec)) return out;
    for (const auto& entry : fs::directory_iterator(parent)) {
        const std::string name = entry.path().filename().string();
        if (!entry.is_directory() || name.rfind("step-", 0) != 0) continue;
        const std::string digits = name.substr(5);
        if (digits.empty() || !std::all_of(digits.begin(), digits.end(), ::isdigit)) continue;
        out.push_back({entry.path().string(), std::stoll(digits)});
    }
    std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.step < b.step; });
    return out;
}

std::optional<CheckpointInfo> newest_valid_checkpoint(const std::string& parent) {
    auto all = list_checkpoints(parent);
    for (auto it = all.rbegin(); it != all.rend(); ++it) {
        try {
            verify_checkpoint_dir(it->path);
            return *it;
        } catch (const Error& e) {
            log_warn("skipping checkpoint: ", e.what());
        }
    }
    return std::nullopt;
}

std::vector<std::string> recover_checkpoint_dirs(const std::string& parent) {
    std::vector<std::string> done;
    std::error_code ec;
    if (!fs::is_directory(parent, ec)) return done;
    std::vector<fs::path> entries;  // listed first: the loop renames and removes
    for (const auto& entry : fs::directory_iterator(parent)) entries.push_back(entry.path());
    for (const fs::path& path : entries) {
        const std::string name = path.filename().string();
        for (const char* marker : {".tmp-", ".old-"}) {
            const size_t at = name.find(marker);
            if (at == std::string::npos || name.rfind("step-", 0) != 0) continue;
            const pid_t pid = static_cast<pid_t>(std::atoll(name.c_str() + at + 5));
            // A writer still running (another process on this run) keeps its directories.
            if (pid > 0 && pid != ::getpid() && (::kill(pid, 0) == 0 || errno == EPERM)) continue;
            const fs::path committed = fs::path(parent) / name.substr(0, at);
            if (std::string(marker) == ".old-" && !fs::exists(committed)) {
                fs::rename(path, committed, ec);
                if (ec) throw Error(path.string(), ": cannot move back to ", committed.string(), ": ", ec.message());
                done.push_back("restored " + committed.string() + " from " + name + " (a crash interrupted its re-save)");
            } else {
                fs::remove_all(path, ec);
                done.push_back("removed " + path.string() + " (left by an interrupted checkpoint write)");
            }
        }
    }
    if (!done.empty()) fsync_directory(parent);
    return done;
}

std::vector<std::string> prune_checkpoints(const std::string& parent, int64_t keep_last, int64_t keep_every) {
    TANDEM_ASSERT(keep_last >= 1, keep_last);
    std::vector<std::string> deleted;
    const auto all = list_checkpoints(parent);
    for (size_t i = 0; i + size_t(keep_last) < all.size(); ++i) {
        if (keep_every > 0 && all[i].step % keep_every == 0) continue;
        std::error_code ec;
        fs::remove_all(all[i].path, ec);
        if (ec) throw Error(all[i].path, ": cannot delete an old checkpoint: ", ec.message());
        deleted.push_back(all[i].path);
    }
    if (!deleted.empty()) fsync_directory(parent);
    return deleted;
}

std::string resolve_checkpoint(const std::string& path) {
    std::error_code ec;
    const auto join = [](const std::string& dir, const char* name) { return (fs::path(dir) / name).string(); };
    if (!fs::is_directory(path, ec)) throw Error(path, ": no such checkpoint or run directory");
    if (fs::exists(join(path, kManifest)) || fs::exists(join(path, "model.safetensors"))) {
        verify_checkpoint_dir(path);
        return path;
    }
    const std::string parent = join(path, "checkpoints");
    if (!fs::is_directory(parent, ec))
        throw Error(path, ": neither a checkpoint (no MANIFEST.json) nor a run directory (no checkpoints/)");
    const auto newest = newest_valid_checkpoint(parent);
    if (!newest) throw Error(parent, ": holds no valid checkpoint");
    return newest->path;
}

}  // namespace tandem::io

// Checkpoint directories that are complete or absent. Files are written into
// "<parent>/step-<N>.tmp-<pid>", a MANIFEST.json listing each file with its size and xxHash3 is
// written last, everything is fsynced, and the directory is renamed to "<parent>/step-<N>".
// A directory whose files do not match its manifest is never loaded.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace tandem::io {

class CheckpointDirWriter {
public:
    CheckpointDirWriter(const std::string& parent, int64_t step);
    // Any directory written the same way ("<final_dir>.tmp-<pid>" renamed to final_dir): exported
    // models.
    explicit CheckpointDirWriter(const std::string& final_dir);
    ~CheckpointDirWriter();  // removes the temporary directory unless committed
    CheckpointDirWriter(const CheckpointDirWriter&) = delete;
    CheckpointDirWriter& operator=(const CheckpointDirWriter&) = delete;

    // Where to write file `name` before commit().
    std::string file(const std::string& name) const;
    // The xxHash3 of file `name`, known from writing it: commit() then need not read it back.
    void note_checksum(const std::string& name, uint64_t xxh3);
    // Writes the manifest, fsyncs, renames into place (replacing an older directory of the same
    // step) and returns the final path.
    std::string commit();

private:
    std::string parent_, final_dir_, temp_dir_;
    std::map<std::string, uint64_t> known_checksums_;
    bool committed_ = false;
};

struct CheckpointInfo {
    std::string path;
    int64_t step = 0;
};

// Throws Error naming the file and the mismatch (missing, wrong size, wrong checksum, no
// manifest) when `dir` does not match its MANIFEST.json.
void verify_checkpoint_dir(const std::string& dir);

// The committed checkpoints under `parent` (step-<N> directories), oldest first; temporary
// directories are ignored.
std::vector<CheckpointInfo> list_checkpoints(const std::string& parent);

// The newest checkpoint under `parent` that passes verification. Each newer one that fails is
// reported through log_warn with the reason and skipped. nullopt when there is none.
std::optional<CheckpointInfo> newest_valid_checkpoint(const std::string& parent);

// Puts `parent` back in order after a crash: removes the temporary directories of writers that
// are gone (step-<N>.tmp-<pid>), and moves step-<N>.old-<pid> back to step-<N> when a crash
// came between the two renames of a re-saved step (the old copy is then the only one). Returns
// what it did, one line each, for the log.
std::vector<std::string> recover_checkpoint_dirs(const std::string& parent);

// Deletes committed checkpoints under `parent` except the newest `keep_last` and those whose step
// is a multiple of `keep_every` (0: none kept that way). Returns the deleted paths.
std::vector<std::string> prune_checkpoints(const std::string& parent, int64_t keep_last, int64_t keep_every);

// A checkpoint directory, or a run directory (its checkpoints/ holds step-<N> directories: the
// newest valid one), resolved to a verified checkpoint directory. Throws Error saying what was
// looked for.
std::string resolve_checkpoint(const std::string& path);

}  // namespace tandem::io

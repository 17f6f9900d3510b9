// Writes checkpoints on a background thread while training goes on. The training loop takes a
// snapshot (a copy in host memory: the only stall) and submits it; the writer persists it
// atomically, then deletes checkpoints that fall out of retention. At most one write is in
// flight: submitting while one is still being written waits for it, so a slow disk slows
// training down rather than queueing snapshots without bound, and two writes never touch the
// same directory at once.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "train/checkpoint.h"

namespace tandem::train {

struct CheckpointWriterOptions {
    std::string parent;  // the run's checkpoints/ directory
    bool async = true;   // false: submit() writes before it returns
    int64_t keep_last = 3;
    int64_t keep_every = 0;  // also keep steps that are multiples of this (0: none)
    CheckpointFileHook after_file;  // after each file, before the commit (fault injection)
    std::function<void(const std::string& dir, int64_t step)> after_commit;  // fault injection
};

struct CheckpointOutcome {
    int64_t step = 0;
    std::string path;   // empty when the write failed
    std::string error;  // why it failed
    double write_seconds = 0;
    double write_cpu_seconds = 0;  // CPU time the writing thread spent, system time included
    std::vector<std::string> pruned;  // older checkpoints deleted by retention
};

class CheckpointWriter {
public:
    explicit CheckpointWriter(CheckpointWriterOptions options);
    ~CheckpointWriter();  // finishes the write in flight
    CheckpointWriter(const CheckpointWriter&) = delete;
    CheckpointWriter& operator=(const CheckpointWriter&) = delete;

    // Hands `snapshot` to the writer, after waiting for the write in flight, if any.
    void submit(std::shared_ptr<const CheckpointSnapshot> snapshot);
    // Runs `task` on the writer's thread (now, for a synchronous writer), in turn with the
    // writes: preparing memory for the next snapshot while training goes on.
    void run_in_background(std::function<void()> task);
    // The outcomes of the writes that ended since the last call; with `wait`, first waits for the
    // write in flight.
    std::vector<CheckpointOutcome> collect(bool wait);

private:
    CheckpointOutcome write(const CheckpointSnapshot& snapshot) const;
    void work();

    CheckpointWriterOptions options_;
    std::mutex mutex_;
    std::condition_variable changed_;
    std::function<void()> pending_;  // a write or a preparation, for the writer's thread
    bool busy_ = false, stopping_ = false;
    std::vector<CheckpointOutcome> outcomes_;
    std::thread thread_;
};

}  // namespace tandem::train

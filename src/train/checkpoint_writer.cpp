// The background checkpoint writer: one thread, one snapshot in flight.
#include "train/checkpoint_writer.h"

#include <chrono>
#include <ctime>

#include "io/checkpoint_dir.h"

namespace tandem::train {

CheckpointWriter::CheckpointWriter(CheckpointWriterOptions options) : options_(std::move(options)) {
    if (options_.async) thread_ = std::thread([this] { work(); });
}

CheckpointWriter::~CheckpointWriter() {
    if (!thread_.joinable()) return;
    {
        std::lock_guard lock(mutex_);
        stopping_ = true;
    }
    changed_.notify_all();
    thread_.join();
}

void CheckpointWriter::submit(std::shared_ptr<const CheckpointSnapshot> snapshot) {
    run_in_background([this, snapshot = std::move(snapshot)] {
        CheckpointOutcome outcome = write(*snapshot);
        std::lock_guard lock(mutex_);
        outcomes_.push_back(std::move(outcome));
    });
}

void CheckpointWriter::run_in_background(std::function<void()> task) {
    if (!options_.async) {
        task();
        return;
    }
    std::unique_lock lock(mutex_);
    changed_.wait(lock, [&] { return !busy_; });
    pending_ = std::move(task);
    busy_ = true;
    lock.unlock();
    changed_.notify_all();
}

std::vector<CheckpointOutcome> CheckpointWriter::collect(bool wait) {
    std::unique_lock lock(mutex_);
    if (wait) changed_.wait(lock, [&] { return !busy_; });
    return std::exchange(outcomes_, {});
}

void CheckpointWriter::work() {
    for (;;) {
        std::unique_lock lock(mutex_);
        changed_.wait(lock, [&] { return pending_ || stopping_; });
        if (!pending_) return;  // stopping, nothing left to do
        std::function<void()> task = std::move(pending_);
        pending_ = nullptr;
        lock.unlock();
        try {
            task();  // a write reports its own failures as an outcome
        } catch (...) {
            // Only a preparation can throw (out of memory); the snapshot itself redoes it.
        }
        task = nullptr;  // a snapshot's memory goes back before the loop hears the task is done
        lock.lock();
        busy_ = false;
        lock.unlock();
        changed_.notify_all();
    }
}

namespace {

double thread_cpu_seconds() {
    timespec ts{};
    ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return double(ts.tv_sec) + 1e-9 * double(ts.tv_nsec);
}

}  // namespace

CheckpointOutcome CheckpointWriter::write(const CheckpointSnapshot& snapshot) const {
    CheckpointOutcome outcome;
    outcome.step = snapshot.state.step;
    const auto begin = std::chrono::steady_clock::now();
    const double cpu_begin = thread_cpu_seconds();
    try {
        outcome.path = write_checkpoint(options_.parent, snapshot, options_.after_file);
        if (options_.after_commit) options_.after_commit(outcome.path, outcome.step);
        outcome.pruned = io::prune_checkpoints(options_.parent, options_.keep_last, options_.keep_every);
    } catch (const std::exception& e) {
        // Whatever failed, the directory was not committed or was committed whole: the newest
        // complete checkpoint on disk is still valid. The training loop decides what to say.
        if (outcome.path.empty()) outcome.error = e.what();
        else outcome.error = std::string("written, but then: ") + e.what();
    }
    outcome.write_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - begin).count();
    outcome.write_cpu_seconds = thread_cpu_seconds() - cpu_begin;
    return outcome;
}

}  // namespace tandem::train

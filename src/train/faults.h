// Fault injection, for tests and for people who rehearse failures before a long run. A plan is a
// list of faults, each KIND@STEP[:ARG], from `tandem train --inject` and the TANDEM_FAULTS
// variable (comma-separated):
//   nan@K[:TARGET]     a NaN in step K: TARGET is grads (default: the first gradient), loss, or
//                      a parameter's Hugging Face name (its first weight, before the forward pass)
//   spike@K[:FACTOR]   step K's loss and gradients multiplied by FACTOR (default 1000)
//   kill@K[:PHASE]     SIGKILL in step K: PHASE is step (default: after backward, before the
//                      update), eval (after the first validation batch) or checkpoint (after
//                      model.safetensors of checkpoint K is written, before it is committed)
//   hang@K[:SECONDS]   step K sleeps SECONDS (default 3600) before its update, like a hung device
//   ckpt-fail@K        writing checkpoint K fails as a full disk would (ENOSPC)
//   ckpt-corrupt@K     one byte of model.safetensors of checkpoint K flipped after it is committed
//   ckpt-truncate@K    model.safetensors of checkpoint K cut to half after it is committed
// Each fault fires once per process.
#pragma once

#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <vector>

namespace tandem::train {

enum class FaultKind { Nan, Spike, Kill, Hang, CheckpointFail, CheckpointCorrupt, CheckpointTruncate };

struct Fault {
    FaultKind kind;
    int64_t step = 0;
    std::string target;  // nan: grads, loss or a parameter name; kill: step, eval or checkpoint
    double value = 0;    // spike: the factor; hang: seconds
    std::string spec;    // as written, for messages
};

class FaultPlan {
public:
    // Throws Error naming the spec and what is wrong with it.
    explicit FaultPlan(const std::vector<std::string>& specs = {});
    FaultPlan(const FaultPlan&) = delete;
    FaultPlan& operator=(const FaultPlan&) = delete;

    // The specs of TANDEM_FAULTS, split at commas (empty when unset).
    static std::vector<std::string> specs_from_environment();

    bool empty() const { return faults_.empty(); }
    // The fault of `kind` (and `target`, when given) planned for `step`, if it has not fired yet;
    // it is marked fired. Safe to call from the checkpoint writer's thread.
    const Fault* take(FaultKind kind, int64_t step, const std::string& target = "");
    const Fault* take(FaultKind kind, int64_t step, const std::function<bool(const Fault&)>& matches);

private:
    std::vector<Fault> faults_;
    std::vector<bool> fired_;
    std::mutex mutex_;
};

// Flips one byte in the middle of `path`, or cuts it to half its size.
void corrupt_file(const std::string& path);
void truncate_file_to_half(const std::string& path);

}  // namespace tandem::train

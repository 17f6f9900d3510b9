// The single-process communicator: with one rank, scattering and gathering are copies.
#include "dist/communicator.h"

#include <cstring>

#include "core/error.h"

namespace tandem::dist {

namespace {
void copy_host(Tensor out, Tensor in, const char* what) {
    TANDEM_ASSERT(out.dtype == in.dtype && out.numel() == in.numel(), what, out.numel(), in.numel());
    TANDEM_ASSERT(out.device == Device::Host && in.device == Device::Host, what, "takes host tensors");
    if (out.data != in.data) std::memcpy(out.data, in.data, in.bytes());
}

struct DonePending final : PendingCollective {
    void wait() override {}
};
}  // namespace

std::unique_ptr<PendingCollective> Communicator::start_all_reduce(Tensor x, ReduceOp op) {
    all_reduce(x, op);
    return std::make_unique<DonePending>();
}

void LocalCommunicator::reduce_scatter(Tensor out, Tensor in) { copy_host(out, in, "reduce_scatter"); }
void LocalCommunicator::all_gather(Tensor out, Tensor in) { copy_host(out, in, "all_gather"); }

}  // namespace tandem::dist

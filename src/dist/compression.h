// Gradient compression for slow links, the `compress=` option: none, bf16, int8 (a scale per
// chunk of 256 values) and powersgd:R (Vogels et al. 2019), each with error feedback: what a
// rank did not transmit is kept as its residual and added to its next gradient, so that over
// many steps the transmitted sum tracks the true one. Aggregation is in rank order, so every
// rank gets the same bits.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "dist/communicator.h"

namespace tandem::dist {

enum class CompressionKind { None, Bf16, Int8, PowerSgd };

struct CompressionSpec {
    CompressionKind kind = CompressionKind::None;
    int rank = 0;               // PowerSGD's R
    bool bf16_factors = false;  // PowerSGD: factors (and the dense remainder) sent as bf16
    // "none", "int8", "powersgd:4", "powersgd:4:bf16": what parse_compression reads
    std::string str() const;
};

// Reads the value of `compress=`; throws Error naming the value and the accepted forms.
CompressionSpec parse_compression(std::string_view text);

// One matrix [rows, cols] of the flat gradient, at element `offset` (a parameter's view).
// PowerSGD compresses matrices; vectors (rows or cols of 1) and elements outside every block
// travel uncompressed.
struct GradientBlock {
    int64_t offset = 0, rows = 0, cols = 0;
};

class GradientCompressor {
public:
    // n: elements of the flat f32 gradient. blocks: its matrices (only PowerSGD reads them;
    // they must not overlap). seed: PowerSGD's first Q, the same on every rank.
    GradientCompressor(CompressionSpec spec, int64_t n, std::vector<GradientBlock> blocks, uint64_t seed);

    // grad f32[n] on the host: this rank's gradient in; out, on every rank, the sum over ranks
    // of what each transmitted (bitwise the same everywhere). What was not transmitted stays
    // in this rank's residual for the next call. A non-finite gradient is passed on as it is
    // (the anomaly guard must see it) and clears the residual rather than poison it.
    // With `may_defer_output`, PowerSGD leaves the matrices' part of the sum as its factors,
    // not in grad: the caller forms it with fill_output() (output_is_deferred() says so).
    void all_reduce(Communicator& comm, Tensor grad, bool may_defer_output = false);

    // This rank's encoded contribution in the last call and over all calls, in bytes: what it
    // sends each peer (the communicator's bytes_sent() counts what went on the wire).
    uint64_t payload_bytes_last() const { return payload_last_; }
    uint64_t payload_bytes_total() const { return payload_total_; }
    // The bytes of one uncompressed f32 gradient, for the ratio.
    uint64_t dense_bytes() const { return static_cast<uint64_t>(n_) * 4; }

    const CompressionSpec& spec() const { return spec_; }
    // The sum of the squares of the last call's output where the codec has it (PowerSGD: summed
    // as it wrote the output, or from the factors), so that the caller need not read the
    // gradient again for its norm; the same bits on every rank.
    std::optional<double> sum_squares_last() const { return sum_squares_last_; }
    // Whether the last call left the matrices' part of its output as PowerSGD's factors rather
    // than in grad (when asked to, and everything was finite); fill_output() then forms it.
    bool output_is_deferred() const { return output_deferred_; }
    // out[count] = the last call's output at elements [begin, begin + count): the matrices'
    // part from the factors, the rest from `grad` (the gradient that call was given). out may be
    // grad + begin. The same bits as an output written whole.
    void fill_output(const float* grad, int64_t begin, int64_t count, float* out) const;
    // What a checkpoint must keep to resume exactly: the residual f32[n] ("residual", absent for
    // none) and PowerSGD's warm-started Q of each compressed block ("powersgd_q", concatenated).
    // Views of this compressor's own state, whole from this call until the next all_reduce.
    std::vector<std::pair<std::string, Tensor>> state();

private:
    void encode_elementwise(Communicator& comm, float* grad);
    void powersgd(Communicator& comm, float* grad, bool may_defer_output);
    void all_reduce_factors(Communicator& comm, float* values, int64_t n);
    // PowerSGD takes the last call's estimate out of the residual at the start of the next call,
    // in the pass that adds the next gradient (one pass over the gradient fewer per step);
    // settle() takes it out now, with the same arithmetic.
    void settle();

    CompressionSpec spec_;
    int64_t n_;
    std::vector<GradientBlock> blocks_;    // PowerSGD's compressed blocks
    std::vector<int64_t> dense_offsets_;  // PowerSGD: elements sent uncompressed (runs)
    std::vector<int64_t> dense_counts_;
    uint64_t seed_;
    uint64_t n_calls_ = 0;
    std::vector<float> residual_;
    std::vector<float> q_;  // PowerSGD: Q of each compressed block, transposed ([R, cols])
    // Buffers of each call, kept so that a step allocates nothing after the first.
    std::vector<uint32_t> payload_;  // element-wise codecs: every rank's payload, then this rank's
    std::vector<float> factors_;     // PowerSGD: every P, then the uncompressed elements
    std::vector<uint16_t> wire_;     // PowerSGD: the factors as bf16 on the way
    // PowerSGD: residual_ holds M of the last call, not yet less (P̂ Qᵀ) * pending_inv_ranks_
    // (P̂ in factors_, Q in q_).
    bool estimate_pending_ = false;
    float pending_inv_ranks_ = 1.0f;
    uint64_t payload_last_ = 0, payload_total_ = 0;
    std::optional<double> sum_squares_last_;
    bool output_deferred_ = false;
};

}  // namespace tandem::dist

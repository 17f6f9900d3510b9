// The compress= option, the element-wise codecs (bf16; int8 with an f32 scale per chunk of 256
// values) and their error feedback. Element-wise payloads are all-gathered and every rank
// decodes and sums them in rank order; PowerSGD's low-rank path is in powersgd.cpp.
#include "dist/compression.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstring>

#include "core/error.h"

namespace tandem::dist {

namespace {

constexpr int64_t kInt8Chunk = 256;  // 4 bytes of scale per 256 codes: 1.6% over 8 bits
constexpr int kMaxPowerSgdRank = 64;

int64_t n_chunks(int64_t n) { return (n + kInt8Chunk - 1) / kInt8Chunk; }

// int8 payload: n codes, then one f32 scale per chunk, padded to whole 32-bit words.
int64_t int8_payload_words(int64_t n) { return (n + 4 * n_chunks(n) + 3) / 4; }

void encode_int8(std::byte* payload, const float* x, int64_t n) {
    auto* codes = reinterpret_cast<int8_t*>(payload);
    std::byte* scales = payload + n;
    for (int64_t c = 0; c < n_chunks(n); ++c) {
        const int64_t begin = c * kInt8Chunk, end = std::min(n, begin + kInt8Chunk);
        float max_abs = 0;
        bool finite = true;
        for (int64_t i = begin; i < end; ++i) {
            finite = finite && std::isfinite(x[i]);
            max_abs = std::max(max_abs, std::fabs(x[i]));
        }
        // A non-finite value makes its whole chunk decode to NaN on every rank: the anomaly
        // guard then sees it, whichever rank it came from.
        const float scale = !finite ? NAN : max_abs / 127.0f;
        for (int64_t i = begin; i < end; ++i) {
            const float q = scale > 0 ? std::nearbyint(x[i] / scale) : 0.0f;
            codes[i] = static_cast<int8_t>(std::clamp(q, -127.0f, 127.0f));
        }
        std::memcpy(scales + 4 * c, &scale, 4);
    }
}

float decode_int8(const std::byte* payload, int64_t n, int64_t i) {
    float scale;
    std::memcpy(&scale, payload + n + 4 * (i / kInt8Chunk), 4);
    return static_cast<float>(reinterpret_cast<const int8_t*>(payload)[i]) * scale;
}

}  // namespace

std::string CompressionSpec::str() const {
    switch (kind) {
        case CompressionKind::None: return "none";
        case CompressionKind::Bf16: return "bf16";
        case CompressionKind::Int8: return "int8";
        case CompressionKind::PowerSgd: return "powersgd:" + std::to_string(rank);
    }
    return "?";
}

CompressionSpec parse_compression(std::string_view text) {
    if (text == "none") return {CompressionKind::None, 0};
    if (text == "bf16") return {CompressionKind::Bf16, 0};
    if (text == "int8") return {CompressionKind::Int8, 0};
    if (text.starts_with("powersgd")) {
        const std::string_view rest = text.substr(8);
        if (rest.empty() || rest[0] != ':') {
            throw Error("compress='", text, "': powersgd needs a rank, as in powersgd:4 (R from 1 to ",
                        kMaxPowerSgdRank, "; 2 to 4 is usual)");
        }
        const std::string_view digits = rest.substr(1);
        int rank = 0;
        const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), rank);
        if (ec != std::errc() || end != digits.data() + digits.size() || rank < 1 || rank > kMaxPowerSgdRank) {
            throw Error("compress='", text, "': the rank '", digits, "' of powersgd:R must be a whole number from 1 to ",
                        kMaxPowerSgdRank);
        }
        return {CompressionKind::PowerSgd, rank};
    }
    throw Error("compress='", text, "' is not a compression; use none, bf16, int8 or powersgd:R (e.g. powersgd:4)");
}

GradientCompressor::GradientCompressor(CompressionSpec spec, int64_t n, std::vector<GradientBlock> blocks,
                                       uint64_t seed)
    : spec_(spec), n_(n), seed_(seed) {
    TANDEM_ASSERT(n >= 0, n);
    if (spec_.kind != CompressionKind::None) residual_.assign(n, 0.0f);
    if (spec_.kind != CompressionKind::PowerSgd) return;
    // PowerSGD: a block is compressed when its factors are smaller than it; everything else
    // (vectors, small matrices, elements outside the blocks) is sent as it is.
    std::sort(blocks.begin(), blocks.end(), [](auto& a, auto& b) { return a.offset < b.offset; });
    const int64_t r = spec_.rank;
    int64_t covered = 0;  // elements before this are either compressed or listed as dense
    for (const GradientBlock& b : blocks) {
        if (b.offset < covered || b.offset + b.rows * b.cols > n || b.rows < 1 || b.cols < 1) {
            throw Error("GradientCompressor: block [", b.rows, ", ", b.cols, "] at offset ", b.offset,
                        " overlaps another or runs past the gradient's ", n, " elements");
        }
        if ((b.rows + b.cols) * r >= b.rows * b.cols) continue;  // stays dense
        if (b.offset > covered) {
            dense_offsets_.push_back(covered);
            dense_counts_.push_back(b.offset - covered);
        }
        blocks_.push_back(b);
        covered = b.offset + b.rows * b.cols;
    }
    if (covered < n) {
        dense_offsets_.push_back(covered);
        dense_counts_.push_back(n - covered);
    }
    int64_t q_size = 0;
    for (const GradientBlock& b : blocks_) q_size += r * b.cols;
    q_.assign(q_size, 0.0f);  // drawn at the first call (a zero column is always redrawn)
}

void GradientCompressor::all_reduce(Communicator& comm, Tensor grad) {
    if (grad.device != Device::Host || grad.dtype != DType::F32 || grad.numel() != n_) {
        throw Error("GradientCompressor::all_reduce: the gradient is ", grad.str(), " on ",
                    device_name(grad.device), " but the compressor was made for f32[", n_, "] on the host");
    }
    switch (spec_.kind) {
        case CompressionKind::None:
            comm.all_reduce(grad);
            payload_last_ = dense_bytes();
            break;
        case CompressionKind::Bf16:
        case CompressionKind::Int8: encode_elementwise(comm, grad.as<float>()); break;
        case CompressionKind::PowerSgd: powersgd(comm, grad.as<float>()); break;
    }
    payload_total_ += payload_last_;
    ++n_calls_;
}

void GradientCompressor::encode_elementwise(Communicator& comm, float* grad) {
    const int64_t n = n_;
    const int n_ranks = comm.size();
    bool finite = true;
    for (int64_t i = 0; i < n; ++i) {
        grad[i] += residual_[i];  // error feedback: last step's untransmitted part goes now
        finite = finite && std::isfinite(grad[i]);
    }
    const bool is_bf16 = spec_.kind == CompressionKind::Bf16;
    // Payloads as 32-bit words (bf16 pairs, or int8 codes and scales) so that any communicator
    // can move them; every rank's payload has the same size.
    const int64_t words = is_bf16 ? (n + 1) / 2 : int8_payload_words(n);
    std::vector<uint32_t> gathered(words * n_ranks), mine(words, 0);
    auto* mine_bytes = reinterpret_cast<std::byte*>(mine.data());
    if (is_bf16) {
        auto* h = reinterpret_cast<uint16_t*>(mine_bytes);
        for (int64_t i = 0; i < n; ++i) h[i] = bf16_from_f32(grad[i]);
    } else {
        encode_int8(mine_bytes, grad, n);
    }
    auto decode = [&](const std::byte* payload, int64_t i) {
        return is_bf16 ? f32_from_bf16(reinterpret_cast<const uint16_t*>(payload)[i]) : decode_int8(payload, n, i);
    };
    // The residual: what this rank meant to send less what its payload says.
    for (int64_t i = 0; i < n; ++i) residual_[i] = finite ? grad[i] - decode(mine_bytes, i) : 0.0f;
    comm.all_gather(Tensor(gathered.data(), DType::I32, {words * n_ranks}), Tensor(mine.data(), DType::I32, {words}));
    for (int64_t i = 0; i < n; ++i) {
        double sum = 0;
        for (int r = 0; r < n_ranks; ++r) sum += decode(reinterpret_cast<const std::byte*>(gathered.data() + r * words), i);
        grad[i] = static_cast<float>(sum);
    }
    payload_last_ = static_cast<uint64_t>(words) * 4;
}

std::vector<std::pair<std::string, Tensor>> GradientCompressor::state() {
    std::vector<std::pair<std::string, Tensor>> out;
    if (!residual_.empty()) out.emplace_back("residual", Tensor(residual_.data(), DType::F32, {n_}));
    if (!q_.empty()) out.emplace_back("powersgd_q", Tensor(q_.data(), DType::F32, {static_cast<int64_t>(q_.size())}));
    return out;
}

}  // namespace tandem::dist

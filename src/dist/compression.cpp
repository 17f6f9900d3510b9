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

// Payloads are 32-bit words (bf16 pairs, or int8 codes then scales) that any communicator
// moves; every rank's has the same size.
int64_t payload_words(CompressionKind kind, int64_t n) {
    // int8: n codes, then one f32 scale per chunk, padded to whole words.
    return kind == CompressionKind::Bf16 ? (n + 1) / 2 : (n + 4 * n_chunks(n) + 3) / 4;
}

// Rounds to the nearest integer, ties to even, for |v| <= 2^22: adding 1.5 * 2^23 leaves no
// fraction bits. Unlike nearbyint it needs no SSE4.1, so the loops below vectorise.
inline float round_small(float v) { return (v + 12582912.0f) - 12582912.0f; }

// Each loop below runs over contiguous elements without a branch so that it vectorises: the
// codecs run once per step over every gradient element. `bad` collects c - c, which is NaN
// exactly when c is not finite; its sum is an `omp simd` reduction, which may reorder it (that
// changes nothing here), because GCC does not vectorise a plain float sum without -ffast-math.

// x += residual; payload = bf16(x); residual = x - payload. Returns whether x was all finite.
bool encode_bf16(uint16_t* payload, float* x, float* residual, int64_t n) {
    float bad = 0;
#pragma omp simd reduction(+ : bad)
    for (int64_t i = 0; i < n; ++i) {
        const float c = x[i] + residual[i];
        const uint16_t h = bf16_from_f32(c);
        payload[i] = h;
        residual[i] = c - f32_from_bf16(h);
        bad += c - c;
    }
    return bad == 0;
}

// The same for int8: codes = round(x / scale) with scale = max |x| / 127 over each chunk. A
// non-finite value makes its chunk's scale NaN, so the chunk decodes to NaN on every rank and
// the anomaly guard sees it, whichever rank it came from.
bool encode_int8(std::byte* payload, float* x, float* residual, int64_t n) {
    auto* codes = reinterpret_cast<int8_t*>(payload);
    std::byte* scales = payload + n;
    float bad = 0;
    for (int64_t c = 0; c < n_chunks(n); ++c) {
        const int64_t begin = c * kInt8Chunk, m = std::min(n - begin, kInt8Chunk);
        float* xc = x + begin;
        float* rc = residual + begin;
        float max_abs = 0, chunk_bad = 0;
#pragma omp simd reduction(max : max_abs) reduction(+ : chunk_bad)
        for (int64_t i = 0; i < m; ++i) {
            xc[i] += rc[i];
            max_abs = std::max(max_abs, std::fabs(xc[i]));
            chunk_bad += xc[i] - xc[i];
        }
        const float scale = chunk_bad != 0 ? NAN : max_abs / 127.0f;
        const float inv = scale > 0 ? 127.0f / max_abs : 0.0f;
        for (int64_t i = 0; i < m; ++i) {
            const float q = std::clamp(round_small(xc[i] * inv), -127.0f, 127.0f);
            codes[begin + i] = static_cast<int8_t>(q);
            rc[i] = xc[i] - q * scale;
        }
        std::memcpy(scales + 4 * c, &scale, 4);
        bad += chunk_bad;
    }
    return bad == 0;
}

// out = the sum over ranks, in rank order, of the decoded payloads (words apart).
void decode_sum_bf16(float* out, const uint32_t* payloads, int64_t words, int n_ranks, int64_t n) {
    for (int64_t i = 0; i < n; ++i) {
        double sum = 0;
        for (int r = 0; r < n_ranks; ++r) sum += f32_from_bf16(reinterpret_cast<const uint16_t*>(payloads + r * words)[i]);
        out[i] = static_cast<float>(sum);
    }
}

void decode_sum_int8(float* out, const uint32_t* payloads, int64_t words, int n_ranks, int64_t n) {
    double acc[kInt8Chunk];
    for (int64_t c = 0; c < n_chunks(n); ++c) {
        const int64_t begin = c * kInt8Chunk, m = std::min(n - begin, kInt8Chunk);
        for (int64_t i = 0; i < m; ++i) acc[i] = 0;
        for (int r = 0; r < n_ranks; ++r) {
            const auto* payload = reinterpret_cast<const std::byte*>(payloads + r * words);
            const auto* codes = reinterpret_cast<const int8_t*>(payload) + begin;
            float scale;
            std::memcpy(&scale, payload + n + 4 * c, 4);
            for (int64_t i = 0; i < m; ++i) acc[i] += static_cast<float>(codes[i]) * scale;
        }
        for (int64_t i = 0; i < m; ++i) out[begin + i] = static_cast<float>(acc[i]);
    }
}

}  // namespace

std::string CompressionSpec::str() const {
    switch (kind) {
        case CompressionKind::None: return "none";
        case CompressionKind::Bf16: return "bf16";
        case CompressionKind::Int8: return "int8";
        case CompressionKind::PowerSgd:
            return "powersgd:" + std::to_string(rank) + (bf16_factors ? ":bf16" : "");
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
        std::string_view digits = rest.substr(1);
        const bool bf16_factors = digits.ends_with(":bf16");
        if (bf16_factors) digits.remove_suffix(5);
        int rank = 0;
        const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), rank);
        if (ec != std::errc() || end != digits.data() + digits.size() || rank < 1 || rank > kMaxPowerSgdRank) {
            throw Error("compress='", text, "': the rank '", digits, "' of powersgd:R must be a whole number from 1 to ",
                        kMaxPowerSgdRank);
        }
        return {CompressionKind::PowerSgd, rank, bf16_factors};
    }
    throw Error("compress='", text,
                "' is not a compression; use none, bf16, int8, powersgd:R or powersgd:R:bf16 (e.g. "
                "powersgd:4)");
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

void GradientCompressor::all_reduce(Communicator& comm, Tensor grad, bool may_defer_output) {
    if (grad.device != Device::Host || grad.dtype != DType::F32 || grad.numel() != n_) {
        throw Error("GradientCompressor::all_reduce: the gradient is ", grad.str(), " on ",
                    device_name(grad.device), " but the compressor was made for f32[", n_, "] on the host");
    }
    output_deferred_ = false;
    sum_squares_last_.reset();
    switch (spec_.kind) {
        case CompressionKind::None:
            comm.all_reduce(grad);
            payload_last_ = dense_bytes();
            break;
        case CompressionKind::Bf16:
        case CompressionKind::Int8: encode_elementwise(comm, grad.as<float>()); break;
        case CompressionKind::PowerSgd:
            powersgd(comm, grad.as<float>(), may_defer_output);
            break;
    }
    payload_total_ += payload_last_;
    ++n_calls_;
}

void GradientCompressor::encode_elementwise(Communicator& comm, float* grad) {
    const int64_t n = n_;
    const int n_ranks = comm.size();
    const int64_t words = payload_words(spec_.kind, n);
    payload_.resize(words * (n_ranks + 1));  // this rank's payload, then everyone's
    uint32_t* mine = payload_.data() + words * n_ranks;
    mine[words - 1] = 0;  // padding bytes, sent like the rest
    // Error feedback: the gradient plus what earlier steps left out is what this rank sends.
    const bool finite = spec_.kind == CompressionKind::Bf16
                            ? encode_bf16(reinterpret_cast<uint16_t*>(mine), grad, residual_.data(), n)
                            : encode_int8(reinterpret_cast<std::byte*>(mine), grad, residual_.data(), n);
    if (!finite) std::fill(residual_.begin(), residual_.end(), 0.0f);  // never carry a NaN on
    comm.all_gather(Tensor(payload_.data(), DType::I32, {words * n_ranks}), Tensor(mine, DType::I32, {words}));
    if (spec_.kind == CompressionKind::Bf16) {
        decode_sum_bf16(grad, payload_.data(), words, n_ranks, n);
    } else {
        decode_sum_int8(grad, payload_.data(), words, n_ranks, n);
    }
    payload_last_ = static_cast<uint64_t>(words) * 4;
}

std::vector<std::pair<std::string, Tensor>> GradientCompressor::state() {
    settle();
    std::vector<std::pair<std::string, Tensor>> out;
    if (!residual_.empty()) out.emplace_back("residual", Tensor(residual_.data(), DType::F32, {n_}));
    if (!q_.empty()) out.emplace_back("powersgd_q", Tensor(q_.data(), DType::F32, {static_cast<int64_t>(q_.size())}));
    return out;
}

}  // namespace tandem::dist

// Block quantizers and the any-to-any conversion. Work goes in chunks of 4096 values through an
// f32 buffer on the stack, so converting a large tensor allocates nothing.
#include "core/quant.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/error.h"

namespace tandem {

namespace {

constexpr int64_t kBlock = 32;

struct BlockQ8 {
    uint16_t d;
    int8_t q[kBlock];
};
struct BlockQ4 {
    uint16_t d;
    uint8_t qs[kBlock / 2];
};
static_assert(sizeof(BlockQ8) == 34 && sizeof(BlockQ4) == 18, "GGML block sizes");

void to_f32(float* y, const void* src, DType dtype, int64_t n) {
    switch (dtype) {
        case DType::F32: std::memcpy(y, src, n * sizeof(float)); return;
        case DType::F64:
            for (int64_t i = 0; i < n; ++i) y[i] = static_cast<float>(static_cast<const double*>(src)[i]);
            return;
        case DType::BF16:
            for (int64_t i = 0; i < n; ++i) y[i] = f32_from_bf16(static_cast<const uint16_t*>(src)[i]);
            return;
        case DType::F16:
            for (int64_t i = 0; i < n; ++i) y[i] = f32_from_f16(static_cast<const uint16_t*>(src)[i]);
            return;
        case DType::Q8_0: dequantize_q8_0(y, src, n); return;
        case DType::Q4_0: dequantize_q4_0(y, src, n); return;
        case DType::I32: break;
    }
    TANDEM_ASSERT(false, "no conversion from", dtype_name(dtype));
}

void from_f32(void* dst, DType dtype, const float* x, int64_t n) {
    switch (dtype) {
        case DType::F32: std::memcpy(dst, x, n * sizeof(float)); return;
        case DType::F64:
            for (int64_t i = 0; i < n; ++i) static_cast<double*>(dst)[i] = x[i];
            return;
        case DType::BF16:
            for (int64_t i = 0; i < n; ++i) static_cast<uint16_t*>(dst)[i] = bf16_from_f32(x[i]);
            return;
        case DType::F16:
            for (int64_t i = 0; i < n; ++i) static_cast<uint16_t*>(dst)[i] = f16_from_f32(x[i]);
            return;
        case DType::Q8_0: quantize_q8_0(dst, x, n); return;
        case DType::Q4_0: quantize_q4_0(dst, x, n); return;
        case DType::I32: break;
    }
    TANDEM_ASSERT(false, "no conversion to", dtype_name(dtype));
}

}  // namespace

void quantize_q8_0(void* blocks, const float* x, int64_t n) {
    TANDEM_ASSERT(n % kBlock == 0, n);
    auto* out = static_cast<BlockQ8*>(blocks);
    for (int64_t b = 0; b < n / kBlock; ++b, x += kBlock) {
        float amax = 0.0f;
        for (int64_t j = 0; j < kBlock; ++j) amax = std::max(amax, std::fabs(x[j]));
        const float d = amax / 127.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        out[b].d = f16_from_f32(d);
        for (int64_t j = 0; j < kBlock; ++j) out[b].q[j] = static_cast<int8_t>(std::round(x[j] * id));
    }
}

void dequantize_q8_0(float* y, const void* blocks, int64_t n) {
    TANDEM_ASSERT(n % kBlock == 0, n);
    const auto* in = static_cast<const BlockQ8*>(blocks);
    for (int64_t b = 0; b < n / kBlock; ++b, y += kBlock) {
        const float d = f32_from_f16(in[b].d);
        for (int64_t j = 0; j < kBlock; ++j) y[j] = static_cast<float>(in[b].q[j]) * d;
    }
}

void quantize_q4_0(void* blocks, const float* x, int64_t n) {
    TANDEM_ASSERT(n % kBlock == 0, n);
    auto* out = static_cast<BlockQ4*>(blocks);
    for (int64_t b = 0; b < n / kBlock; ++b, x += kBlock) {
        // The value of largest magnitude maps to -8, the end of the range with one more step.
        float amax = 0.0f, max = 0.0f;
        for (int64_t j = 0; j < kBlock; ++j)
            if (std::fabs(x[j]) > amax) {
                amax = std::fabs(x[j]);
                max = x[j];
            }
        const float d = max / -8.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        out[b].d = f16_from_f32(d);
        for (int64_t j = 0; j < kBlock / 2; ++j) {
            // +8.5 then truncation rounds to nearest on the shifted, non-negative range.
            const int lo = std::min(15, static_cast<int>(static_cast<int8_t>(x[j] * id + 8.5f)));
            const int hi =
                std::min(15, static_cast<int>(static_cast<int8_t>(x[j + kBlock / 2] * id + 8.5f)));
            out[b].qs[j] = static_cast<uint8_t>(lo | (hi << 4));
        }
    }
}

void dequantize_q4_0(float* y, const void* blocks, int64_t n) {
    TANDEM_ASSERT(n % kBlock == 0, n);
    const auto* in = static_cast<const BlockQ4*>(blocks);
    for (int64_t b = 0; b < n / kBlock; ++b, y += kBlock) {
        const float d = f32_from_f16(in[b].d);
        for (int64_t j = 0; j < kBlock / 2; ++j) {
            y[j] = static_cast<float>((in[b].qs[j] & 15) - 8) * d;
            y[j + kBlock / 2] = static_cast<float>((in[b].qs[j] >> 4) - 8) * d;
        }
    }
}

void convert_values(void* dst, DType dst_dtype, const void* src, DType src_dtype, int64_t n) {
    if (dst_dtype == src_dtype) {
        std::memcpy(dst, src, dtype_bytes(src_dtype, n));
        return;
    }
    TANDEM_ASSERT(n % dtype_block_values(src_dtype) == 0 && n % dtype_block_values(dst_dtype) == 0,
                  n, dtype_name(src_dtype), dtype_name(dst_dtype));
    constexpr int64_t kChunk = 4096;  // a multiple of every block
    float buffer[kChunk];
    auto* out = static_cast<char*>(dst);
    const auto* in = static_cast<const char*>(src);
    for (int64_t done = 0; done < n; done += kChunk) {
        const int64_t count = std::min(kChunk, n - done);
        to_f32(buffer, in + dtype_bytes(src_dtype, done), src_dtype, count);
        from_f32(out + dtype_bytes(dst_dtype, done), dst_dtype, buffer, count);
    }
}

}  // namespace tandem

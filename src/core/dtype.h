// Storage types and their scalar conversions. bf16 and f16 are stored as uint16_t bit patterns
// and converted with round-to-nearest-even, the rounding every accelerator uses, so that a value
// rounded on the CPU equals the same value rounded on a GPU. Q8_0 and Q4_0 are GGML's block
// formats (32 values per block under one f16 scale); their codecs live in core/quant.h.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>

namespace tandem {

enum class DType : uint8_t { F32, F64, BF16, F16, I32, Q8_0, Q4_0 };

// Values per block: 32 for the block formats, 1 for element types.
int64_t dtype_block_values(DType dtype);
// Bytes per block: the element size, or 34 (Q8_0) and 18 (Q4_0).
size_t dtype_block_bytes(DType dtype);
inline bool is_block_dtype(DType dtype) { return dtype_block_values(dtype) > 1; }
// The element size of an element type (a block dtype has none: use dtype_bytes).
size_t dtype_size(DType dtype);
// The bytes of n values; n must be a whole number of blocks (asserted).
size_t dtype_bytes(DType dtype, int64_t n);
std::string_view dtype_name(DType dtype);
// Parses "f32", "float32", "bf16", "q8_0", ...; throws Error naming the accepted spellings
// otherwise.
DType dtype_from_name(std::string_view name);

inline uint32_t f32_bits(float x) {
    uint32_t u;
    std::memcpy(&u, &x, 4);
    return u;
}
inline float f32_from_bits(uint32_t u) {
    float x;
    std::memcpy(&x, &u, 4);
    return x;
}

// bf16 is the upper half of an f32. Rounding adds 0x7fff plus the lowest kept bit, which rounds
// ties to even; NaNs are kept quiet NaNs instead of being rounded into infinity.
inline uint16_t bf16_from_f32(float x) {
    uint32_t u = f32_bits(x);
    if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x40u);
    u += 0x7fffu + ((u >> 16) & 1u);
    return static_cast<uint16_t>(u >> 16);
}
inline float f32_from_bf16(uint16_t h) { return f32_from_bits(static_cast<uint32_t>(h) << 16); }

uint16_t f16_from_f32(float x);
float f32_from_f16(uint16_t h);

}  // namespace tandem

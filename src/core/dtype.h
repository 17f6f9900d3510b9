// Element types and their conversions. bf16 and f16 are stored as uint16_t bit patterns and
// converted with round-to-nearest-even, the rounding every accelerator uses, so that a value
// rounded on the CPU equals the same value rounded on a GPU.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>

namespace tandem {

enum class DType : uint8_t { F32, F64, BF16, F16, I32 };

size_t dtype_size(DType dtype);
std::string_view dtype_name(DType dtype);
// Parses "f32", "float32", "bf16", ...; throws Error naming the accepted spellings otherwise.
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

// Names and sizes of the storage types, and IEEE binary16 conversions.
#include "core/dtype.h"

#include "core/error.h"

namespace tandem {

int64_t dtype_block_values(DType dtype) {
    return dtype == DType::Q8_0 || dtype == DType::Q4_0 ? 32 : 1;
}

size_t dtype_block_bytes(DType dtype) {
    switch (dtype) {
        case DType::F32: return 4;
        case DType::F64: return 8;
        case DType::BF16: return 2;
        case DType::F16: return 2;
        case DType::I32: return 4;
        case DType::Q8_0: return 2 + 32;  // f16 scale, 32 int8
        case DType::Q4_0: return 2 + 16;  // f16 scale, 32 4-bit values in 16 bytes
    }
    TANDEM_ASSERT(false, static_cast<int>(dtype));
}

size_t dtype_size(DType dtype) {
    TANDEM_ASSERT(!is_block_dtype(dtype), "a block dtype has no element size", dtype_name(dtype));
    return dtype_block_bytes(dtype);
}

size_t dtype_bytes(DType dtype, int64_t n) {
    const int64_t per_block = dtype_block_values(dtype);
    TANDEM_ASSERT(n >= 0 && n % per_block == 0, dtype_name(dtype), n);
    return static_cast<size_t>(n / per_block) * dtype_block_bytes(dtype);
}

std::string_view dtype_name(DType dtype) {
    switch (dtype) {
        case DType::F32: return "f32";
        case DType::F64: return "f64";
        case DType::BF16: return "bf16";
        case DType::F16: return "f16";
        case DType::I32: return "i32";
        case DType::Q8_0: return "q8_0";
        case DType::Q4_0: return "q4_0";
    }
    TANDEM_ASSERT(false, static_cast<int>(dtype));
}

DType dtype_from_name(std::string_view name) {
    if (name == "f32" || name == "float32" || name == "fp32") return DType::F32;
    if (name == "f64" || name == "float64" || name == "fp64") return DType::F64;
    if (name == "bf16" || name == "bfloat16") return DType::BF16;
    if (name == "f16" || name == "float16" || name == "fp16") return DType::F16;
    if (name == "i32" || name == "int32") return DType::I32;
    if (name == "q8_0" || name == "Q8_0") return DType::Q8_0;
    if (name == "q4_0" || name == "Q4_0") return DType::Q4_0;
    throw Error("unknown dtype '", name, "' (expected one of f32, f64, bf16, f16, i32, q8_0, q4_0)");
}

// binary16: 1 sign, 5 exponent (bias 15), 10 mantissa bits.
uint16_t f16_from_f32(float x) {
    const uint32_t u = f32_bits(x);
    const uint16_t sign = static_cast<uint16_t>((u >> 16) & 0x8000u);
    const uint32_t abs = u & 0x7fffffffu;
    if (abs > 0x7f800000u) return sign | 0x7e00u;         // NaN stays a (quiet) NaN
    if (abs >= 0x477ff000u) return sign | 0x7c00u;        // rounds to >= 65520: infinity
    if (abs < 0x38800000u) {                              // below 2^-14: subnormal or zero
        // Shift the implicit-one mantissa into place and round to nearest even on the way.
        if (abs < 0x33000000u) return sign;               // below half the smallest subnormal
        const int exponent = static_cast<int>(abs >> 23);
        const uint32_t mantissa = (abs & 0x7fffffu) | 0x800000u;
        const int shift = 126 - exponent;  // value = mantissa * 2^(exponent - 150), unit 2^-24
        const uint32_t kept = mantissa >> shift;
        const uint32_t rest = mantissa & ((1u << shift) - 1);
        const uint32_t half = 1u << (shift - 1);
        uint32_t rounded = kept + ((rest > half || (rest == half && (kept & 1u))) ? 1u : 0u);
        return sign | static_cast<uint16_t>(rounded);
    }
    // Normal: rebias the exponent, then round the 13 dropped mantissa bits to nearest even.
    uint32_t h = ((abs >> 13) - ((127u - 15u) << 10));
    const uint32_t rest = abs & 0x1fffu;
    if (rest > 0x1000u || (rest == 0x1000u && (h & 1u))) ++h;  // may carry into the exponent
    return sign | static_cast<uint16_t>(h);
}

float f32_from_f16(uint16_t h) {
    const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
    const uint32_t exponent = (h >> 10) & 0x1fu;
    uint32_t mantissa = h & 0x3ffu;
    if (exponent == 0x1f) return f32_from_bits(sign | 0x7f800000u | (mantissa << 13));
    if (exponent != 0) return f32_from_bits(sign | ((exponent + 112u) << 23) | (mantissa << 13));
    if (mantissa == 0) return f32_from_bits(sign);
    // Subnormal: normalise the mantissa.
    int e = -1;
    do {
        ++e;
        mantissa <<= 1;
    } while ((mantissa & 0x400u) == 0);
    return f32_from_bits(sign | ((112u - e) << 23) | ((mantissa & 0x3ffu) << 13));
}

}  // namespace tandem

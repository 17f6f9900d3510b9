// Converting values between storage types, GGML's block formats included. A tensor read from a
// file in one type (bf16 safetensors, Q8_0 GGUF) becomes another here, and the block layouts
// are byte for byte GGML's, so a GGUF tensor maps to tandem memory without conversion:
//   Q8_0 block (34 bytes): f16 d, int8 q[32];          value j = q[j] * d,  d = max|x| / 127
//   Q4_0 block (18 bytes): f16 d, uint8 qs[16];        value j = (nibble j - 8) * d, where
//                          nibble j < 16 is qs[j] & 15 and nibble j + 16 is qs[j] >> 4;
//                          d = m / -8 for the value m of largest magnitude (its sign kept)
// Rounding follows GGML's reference quantizers, so tandem's Q8_0 of a tensor equals llama.cpp's.
#pragma once

#include <cstdint>

#include "core/dtype.h"

namespace tandem {

void quantize_q8_0(void* blocks, const float* x, int64_t n);    // n % 32 == 0
void dequantize_q8_0(float* y, const void* blocks, int64_t n);
void quantize_q4_0(void* blocks, const float* x, int64_t n);    // n % 32 == 0
void dequantize_q4_0(float* y, const void* blocks, int64_t n);

// n values from src (src_dtype) to dst (dst_dtype), through f32 when the two differ; a copy
// when they are the same. Any pair of F32, F64, BF16, F16, Q8_0, Q4_0 (I32 only to itself);
// block dtypes need n % 32 == 0 (asserted: callers check shapes at the file boundary).
void convert_values(void* dst, DType dst_dtype, const void* src, DType src_dtype, int64_t n);

}  // namespace tandem

// Products with weights in their storage dtype (f32, f16, bf16, Q8_0, Q4_0) on the cpu backend:
// backend.h's matmul_weights, with the instruction set chosen once at run time. Decoding (a few
// activation rows, memory bound): against Q8_0 and Q4_0 each row of x is quantised to 8 bits per
// block of 32 once per call and the products are integer dot products (VNNI on AVX-512, maddubs
// on AVX2); against bf16 AVX512_BF16 rounds x to bf16 and uses its pair products; f16 and f32
// weights are widened in registers. From 8 rows on, AVX-512 runs Q8_0 and Q4_0 through integer
// tiles that multiply 16 rows of x per instruction (x quantised once per call, at every row
// count), and from 6 rows on AMX runs them through 16 x 16 tiles; other prefill products (more
// than 16 rows) widen panels of weight rows to f32 for the f32 GEMM of gemm.h. Every path is reachable on one machine (TANDEM_CPU_ISA, or the isa
// argument), so that tests/backend/matmul_weights_test.cpp checks each against reference/.
#pragma once

#include <cstdint>

#include "core/tensor.h"

namespace tandem::backend::cpu {

// From the least to the most capable: portable C++ (no vectors of our own); AVX2 with FMA and
// F16C; AVX-512 F, BW, VL, DQ and VNNI; the same with AVX512_BF16; the same with AMX-INT8 tiles
// for Q8_0 and Q4_0 against 6 rows or more (where Linux grants the tile state).
enum class WeightsIsa { generic, avx2, avx512, avx512_bf16, amx };

// "generic", "avx2", "avx512", "avx512_bf16", "amx": the spellings TANDEM_CPU_ISA takes.
const char* weights_isa_name(WeightsIsa isa);
// The most capable path this CPU runs (checked once).
WeightsIsa weights_isa_supported();
// Whether this CPU runs `isa` (generic always).
bool weights_isa_runs(WeightsIsa isa);
// The path for a value of TANDEM_CPU_ISA (null when unset) on a CPU whose best is `supported`:
// auto (the default) gives `supported` (amx: AMX's row tiles from 6 activation rows on,
// avx512_bf16's kernels below); a name gives that path. Throws Error naming the value
// when it is none of these, or a path this CPU lacks.
WeightsIsa weights_isa_choice(const char* value, WeightsIsa supported);
// The path the cpu backend uses: weights_isa_choice of TANDEM_CPU_ISA, read once.
WeightsIsa weights_isa_chosen();

// backend.h's matmul_weights on `isa` (one weights_isa_runs accepts), f32 out, x and bias;
// shapes checked by the caller. Call it outside any parallel region: it opens its own.
void matmul_weights(WeightsIsa isa, Tensor out, Tensor x, Tensor w, Tensor bias, bool w_is_in_out);

// A row x [n] of a call with `rows` activation rows as the kernels of `isa` see it against
// `weight_dtype` weights, in place. The integer paths round x to 8 bits per block of 32 for
// Q8_0/Q4_0 (d = max|x| / 127, q = round-half-even(x / d) computed as x * (127 / max|x|)):
// decoding (rows <= 16) on the vector paths and AVX-512's row tiles at any row count; decoding
// on avx512_bf16 rounds x to bf16 for bf16 weights; panels of weights widened to f32 (rows > 16)
// and the generic path keep x. n % 32 == 0 for the block dtypes. For tests: the reference
// product of rounded x must then match the kernel to f32 rounding.
void round_activations(WeightsIsa isa, DType weight_dtype, int64_t rows, float* x, int64_t n);

}  // namespace tandem::backend::cpu

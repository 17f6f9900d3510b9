// Element-wise reductions of host buffers in a fixed order: the arithmetic under every
// communicator's sums, so that a result depends only on the inputs and their order, never on
// which algorithm or message schedule delivered them.
#pragma once

#include <cstdint>
#include <span>

#include "core/dtype.h"
#include "dist/communicator.h"

namespace tandem::dist {

// out[i] = parts[0][i] op parts[1][i] op ... in that order, for n elements of dtype (F32, F64
// or BF16). f32 sums round after each part, as f32 arithmetic does (so that a sum over ranks is
// the sum one rank forms over micro-batches); bf16 sums accumulate in double and round once, so
// that a bf16 sum of many ranks loses no more than one rounding; Max propagates NaN so that a
// non-finite value on any rank is seen by all. out may be one of the parts.
void reduce_in_order(void* out, std::span<const void* const> parts, int64_t n, DType dtype,
                     ReduceOp op);

// Whether the communicators can reduce this dtype (they can move any element type).
bool is_reducible(DType dtype);

}  // namespace tandem::dist

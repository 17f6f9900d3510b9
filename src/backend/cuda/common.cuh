// Device helpers shared by the kernels: element conversion (f32 and bf16 storage, f32
// arithmetic), warp and block sums, the dtype dispatch of the launchers, and a deterministic
// column reduction (parameter gradients summed over rows) used by norms, bias and qk_norm.
#pragma once

#include <cuda_bf16.h>

#include <algorithm>
#include <cstdint>

#include "backend/cuda/context.h"

namespace tandem::backend::cuda {

__device__ __forceinline__ float to_f32(float x) { return x; }
__device__ __forceinline__ float to_f32(__nv_bfloat16 x) { return __bfloat162float(x); }

template <typename T>
__device__ __forceinline__ T from_f32(float x);
template <>
__device__ __forceinline__ float from_f32<float>(float x) { return x; }
template <>
__device__ __forceinline__ __nv_bfloat16 from_f32<__nv_bfloat16>(float x) {
    return __float2bfloat16_rn(x);  // round to nearest even, as core/dtype.h on the host
}

template <typename Real>
__device__ __forceinline__ Real warp_sum(Real x) {
    for (int offset = 16; offset > 0; offset /= 2) x += __shfl_xor_sync(0xffffffffu, x, offset);
    return x;
}
__device__ __forceinline__ float warp_max(float x) {
    for (int offset = 16; offset > 0; offset /= 2)
        x = fmaxf(x, __shfl_xor_sync(0xffffffffu, x, offset));
    return x;
}

// Sum over the block (blockDim.x a multiple of 32, at most 1024), returned to every thread. The
// order of the additions depends only on blockDim, so results are bitwise reproducible.
template <typename Real>
__device__ Real block_sum(Real x) {
    __shared__ Real partial[32];
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, n_warps = blockDim.x / 32;
    x = warp_sum(x);
    __syncthreads();  // partial[] may still be read by a previous call
    if (lane == 0) partial[warp] = x;
    __syncthreads();
    x = lane < n_warps ? partial[lane] : Real(0);
    return warp_sum(x);
}

// Calls fn(T{}) with T = float or __nv_bfloat16: the one place a launcher looks at the dtype.
template <typename Fn>
void dispatch(DType dtype, Fn&& fn) {
    switch (dtype) {
        case DType::F32: fn(float{}); return;
        case DType::BF16: fn(__nv_bfloat16{}); return;
        default: TANDEM_ASSERT(false, "cuda backend: unsupported compute dtype", dtype_name(dtype));
    }
}

inline unsigned n_blocks_for(int64_t n, int threads, int64_t cap = 65535LL * 8) {
    int64_t blocks = (n + threads - 1) / threads;
    if (blocks > cap) blocks = cap;
    return static_cast<unsigned>(blocks < 1 ? 1 : blocks);
}

// ---- deterministic column reduction -----------------------------------------------------------
// out[c] += sum_n op(n, c) for n < N, c < C. Pass 1: a grid of (column tiles of 32) x (row
// chunks) writes f32 partial sums per chunk; pass 2 adds the chunks in order. Both passes fix
// their order by the sizes alone, so results are reproducible bit for bit (no atomics).
template <typename Op>
__global__ void column_partials_kernel(float* partials, Op op, int64_t N, int64_t C,
                                       int64_t rows_per_chunk) {
    __shared__ float tile[8][33];
    const int64_t c = int64_t(blockIdx.x) * 32 + threadIdx.x;
    const int64_t row_begin = int64_t(blockIdx.y) * rows_per_chunk;
    const int64_t row_end = min(N, row_begin + rows_per_chunk);
    float acc = 0.0f;
    if (c < C)
        for (int64_t n = row_begin + threadIdx.y; n < row_end; n += 8) acc += op(n, c);
    tile[threadIdx.y][threadIdx.x] = acc;
    __syncthreads();
    if (threadIdx.y == 0 && c < C) {
        for (int r = 1; r < 8; ++r) acc += tile[r][threadIdx.x];
        partials[int64_t(blockIdx.y) * C + c] = acc;
    }
}

template <typename T>
__global__ void column_finish_kernel(T* out, const float* partials, int64_t n_chunks, int64_t C) {
    const int64_t c = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
    if (c >= C) return;
    float acc = 0.0f;
    for (int64_t k = 0; k < n_chunks; ++k) acc += partials[k * C + c];
    out[c] = from_f32<T>(to_f32(out[c]) + acc);
}

template <typename T, typename Op>
void column_sum_accumulate(Context& ctx, T* out, Op op, int64_t N, int64_t C) {
    const int64_t col_tiles = (C + 31) / 32;
    // Enough blocks to fill the GPU a few times over, and at least 64 rows per chunk.
    int64_t n_chunks = std::max<int64_t>(1, (4 * ctx.n_sms + col_tiles - 1) / col_tiles);
    n_chunks = std::min<int64_t>(n_chunks, (N + 63) / 64);
    n_chunks = std::max<int64_t>(n_chunks, 1);
    const int64_t rows_per_chunk = (N + n_chunks - 1) / n_chunks;
    Scratch partials(ctx, size_t(n_chunks * C) * sizeof(float));
    column_partials_kernel<<<dim3(unsigned(col_tiles), unsigned(n_chunks)), dim3(32, 8), 0,
                             ctx.stream>>>(partials.as<float>(), op, N, C, rows_per_chunk);
    TANDEM_CUDA_CHECK_LAUNCH();
    column_finish_kernel<<<n_blocks_for(C, 256), 256, 0, ctx.stream>>>(out, partials.as<float>(),
                                                                        n_chunks, C);
    TANDEM_CUDA_CHECK_LAUNCH();
}

}  // namespace tandem::backend::cuda

// Paged attention for prefill chunks on the cpu backend: a block of query rows of one sequence,
// with every query head that shares a kv head, against the keys it sees, a block of keys at a
// time (blocked dot products, online softmax, the causal mask only where a key block crosses the
// rows' diagonal). paged_attention.cpp splits a step's rows into such blocks and single decode
// rows and runs them in parallel; this header is the seam between that driver and the tiles,
// which are compiled once per instruction set (paged_attention_tiles.h).
#pragma once

#include <cstdint>
#include <vector>

#include "backend/cpu/matmul_weights.h"
#include "core/tensor.h"

namespace tandem::backend::cpu {

// Keys per block: the columns of one block of scores, and of a packed K^T panel [D, kKeyBlock].
constexpr int64_t kKeyBlock = 64;

// One task: `rows` consecutive rows of qkv (row0...) at positions pos0... of one sequence, and
// kv head g with its group of H / Hkv query heads. keys_t holds the sequence's keys of head g
// packed as K^T, one [D, kKeyBlock] panel per key block (zero past the last key). Values are
// read through value_row (f32 rows of D, D apart from one another or not).
struct PagedBlock {
    const float* qkv;
    float* out;
    int64_t W, H, Hkv, D;
    int64_t row0, rows, pos0, g;
    const float* keys_t;
    // The f32 value row of head g at position p: pages (f32 cache) or a converted copy (f16).
    const float* const* value_rows;
};

// The work of one PagedBlock on the calling thread; scratch grows as needed and is reused.
using PagedBlockKernel = void (*)(const PagedBlock&, std::vector<float>& scratch);
void paged_block_generic(const PagedBlock& b, std::vector<float>& scratch);
void paged_block_avx2(const PagedBlock& b, std::vector<float>& scratch);
void paged_block_avx512(const PagedBlock& b, std::vector<float>& scratch);

// The block kernel of `isa` (one this CPU runs) for head dimension D: AVX-512 needs D % 16 == 0
// and AVX2 D % 8 == 0; a head that does not divide takes the next narrower path.
PagedBlockKernel paged_block_kernel(WeightsIsa isa, int64_t D);

// backend.h's paged_attention_forward with the prefill blocks on `isa` (the backend passes
// weights_isa_chosen(); tests pass each path the CPU runs). Inputs checked by the caller.
void paged_attention_forward(WeightsIsa isa, Tensor out, Tensor qkv, Tensor k_pages, Tensor v_pages,
                             Tensor page_table, Tensor seq_index, Tensor positions, int64_t H,
                             int64_t Hkv);

}  // namespace tandem::backend::cpu

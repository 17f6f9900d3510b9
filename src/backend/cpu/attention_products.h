// The matrix products of causal attention for one kv head at a time, on the calling thread (the
// attention kernels call them from inside their own parallel region). Two ways to run
// them: OpenBLAS's sgemm on the blocks as they lie in qkv, or tandem's kernel (gemm.h) against
// the head's keys and values packed once for all its blocks of queries, so that a block's
// products pack only its own rows (a block's products are small: 64 query rows against a head
// dimension of 48 to 128, where packing both operands for every call costs as much as the FMAs).
#pragma once

#include <cstdint>

#include "backend/cpu/gemm.h"
#include "backend/cpu/gemm_blocked.h"

namespace tandem::backend::cpu {

// Where the heads live in qkv [B, T, (H + 2 Hkv) D] (a row stride of W between positions).
struct HeadLayout {
    int64_t B, T, H, Hkv, D, W;
    int64_t group() const { return H / Hkv; }
    int64_t q(int64_t b, int64_t t, int64_t h) const { return (b * T + t) * W + h * D; }
    int64_t k(int64_t b, int64_t t, int64_t g) const { return (b * T + t) * W + (H + g) * D; }
    int64_t v(int64_t b, int64_t t, int64_t g) const { return (b * T + t) * W + (H + Hkv + g) * D; }
};

class HeadProducts {
   public:
    // For the forward pass (scores and values), or the backward (all but values). `kernel`:
    // openblas, or one of tandem's this CPU runs.
    HeadProducts(const HeadLayout& layout, const float* qkv, GemmKernel kernel, bool backward);

    // The kv head g of batch b for the products below (with tandem's kernel: packs it, unless
    // it is the head already in use).
    void use_head(int64_t b, int64_t g);

    // In each product, `rows` query rows against the head's first `keys` keys; matrices of
    // [rows, keys] (s, p, dp, ds) have a row stride of `keys`.
    // S = Q K^T (unscaled), q with row stride W.
    void scores(const float* q, int64_t rows, int64_t keys, float* s) const;
    // O = P V into o with row stride ldo.
    void values(const float* p, int64_t rows, int64_t keys, float* o, int64_t ldo) const;
    // dP = dO V^T, dout with row stride ld_dout.
    void prob_grads(const float* dout, int64_t ld_dout, int64_t rows, int64_t keys,
                    float* dp) const;
    // dV += P^T dO into dv with row stride ld_dv.
    void value_grads(const float* p, const float* dout, int64_t ld_dout, int64_t rows,
                     int64_t keys, float* dv, int64_t ld_dv);
    // dQ = dS K into dq with row stride W.
    void query_grads(const float* ds, int64_t rows, int64_t keys, float* dq) const;
    // dK += dS^T Q into dk with row stride ld_dk, q with row stride W.
    void key_grads(const float* ds, const float* q, int64_t rows, int64_t keys, float* dk,
                   int64_t ld_dk);

   private:
    // A packed operand, its buffer grown as needed.
    struct Packed {
        AlignedFloats buffer;
        int64_t capacity = 0;
        PackedB b{};
    };
    // op(B) [K, N] packed into `into` for gemm_packed_b; returns into.b.
    PackedB pack(Packed& into, bool trans_b, int64_t K, int64_t N, const float* b,
                 int64_t ldb) const;
    bool own() const { return kernel_ != GemmKernel::openblas; }

    HeadLayout L_;
    const float* qkv_;
    GemmKernel kernel_;
    bool backward_;
    int64_t batch_ = -1, kv_head_ = -1;               // the head in use
    const float *keys_ = nullptr, *values_ = nullptr;  // its rows in qkv
    // With tandem's kernel: the head's K^T [D, T], V [T, D] (forward), V^T [D, T] and K [T, D]
    // (backward), and a block's own rows as op(B) [rows, D] (backward).
    Packed keys_t_, values_n_, values_t_, keys_n_, block_;
};

}  // namespace tandem::backend::cpu

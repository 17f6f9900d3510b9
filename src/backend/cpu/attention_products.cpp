// The products of attention for one kv head (attention_products.h).
#include "backend/cpu/attention_products.h"

#include "backend/cpu/blas.h"

namespace tandem::backend::cpu {

HeadProducts::HeadProducts(const HeadLayout& layout, const float* qkv, GemmKernel kernel,
                           bool backward)
    : L_(layout), qkv_(qkv), kernel_(kernel), backward_(backward) {}

PackedB HeadProducts::pack(Packed& into, bool trans_b, int64_t K, int64_t N, const float* b,
                           int64_t ldb) const {
    const int64_t floats = packed_b_floats(kernel_, K, N);
    if (floats > into.capacity) {
        into.buffer = aligned_floats(floats);
        into.capacity = floats;
    }
    cpu::pack_b(kernel_, trans_b, K, N, b, ldb, into.buffer.get());
    into.b = {into.buffer.get(), K, N};
    return into.b;
}

void HeadProducts::use_head(int64_t b, int64_t g) {
    if (b == batch_ && g == kv_head_) return;
    batch_ = b;
    kv_head_ = g;
    keys_ = qkv_ + L_.k(b, 0, g);
    values_ = qkv_ + L_.v(b, 0, g);
    if (!own()) return;
    // K^T [D, T] is K [T, D] read transposed; likewise V^T.
    pack(keys_t_, true, L_.D, L_.T, keys_, L_.W);
    if (backward_) {
        pack(values_t_, true, L_.D, L_.T, values_, L_.W);
        pack(keys_n_, false, L_.T, L_.D, keys_, L_.W);
    } else {
        pack(values_n_, false, L_.T, L_.D, values_, L_.W);
    }
}

void HeadProducts::scores(const float* q, int64_t rows, int64_t keys, float* s) const {
    if (own())
        gemm_packed_b(kernel_, false, rows, keys, L_.D, q, L_.W, keys_t_.b, 0.0f, s, keys);
    else
        sgemm(false, true, rows, keys, L_.D, 1.0f, q, L_.W, keys_, L_.W, 0.0f, s, keys);
}

void HeadProducts::values(const float* p, int64_t rows, int64_t keys, float* o,
                          int64_t ldo) const {
    if (own())
        gemm_packed_b(kernel_, false, rows, L_.D, keys, p, keys, values_n_.b, 0.0f, o, ldo);
    else
        sgemm(false, false, rows, L_.D, keys, 1.0f, p, keys, values_, L_.W, 0.0f, o, ldo);
}

void HeadProducts::prob_grads(const float* dout, int64_t ld_dout, int64_t rows, int64_t keys,
                              float* dp) const {
    if (own())
        gemm_packed_b(kernel_, false, rows, keys, L_.D, dout, ld_dout, values_t_.b, 0.0f, dp,
                      keys);
    else
        sgemm(false, true, rows, keys, L_.D, 1.0f, dout, ld_dout, values_, L_.W, 0.0f, dp, keys);
}

void HeadProducts::value_grads(const float* p, const float* dout, int64_t ld_dout, int64_t rows,
                               int64_t keys, float* dv, int64_t ld_dv) {
    if (!own()) {
        sgemm(true, false, keys, L_.D, rows, 1.0f, p, keys, dout, ld_dout, 1.0f, dv, ld_dv);
        return;
    }
    const PackedB block = pack(block_, false, rows, L_.D, dout, ld_dout);
    gemm_packed_b(kernel_, true, keys, L_.D, rows, p, keys, block, 1.0f, dv, ld_dv);
}

void HeadProducts::query_grads(const float* ds, int64_t rows, int64_t keys, float* dq) const {
    if (own())
        gemm_packed_b(kernel_, false, rows, L_.D, keys, ds, keys, keys_n_.b, 0.0f, dq, L_.W);
    else
        sgemm(false, false, rows, L_.D, keys, 1.0f, ds, keys, keys_, L_.W, 0.0f, dq, L_.W);
}

void HeadProducts::key_grads(const float* ds, const float* q, int64_t rows, int64_t keys,
                             float* dk, int64_t ld_dk) {
    if (!own()) {
        sgemm(true, false, keys, L_.D, rows, 1.0f, ds, keys, q, L_.W, 1.0f, dk, ld_dk);
        return;
    }
    const PackedB block = pack(block_, false, rows, L_.D, q, L_.W);
    gemm_packed_b(kernel_, true, keys, L_.D, rows, ds, keys, block, 1.0f, dk, ld_dk);
}

}  // namespace tandem::backend::cpu

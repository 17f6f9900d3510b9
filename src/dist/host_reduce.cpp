// Fixed-order element-wise reduction over host buffers of f32, f64 or bf16.
#include "dist/host_reduce.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace tandem::dist {

namespace {

double load(const void* p, int64_t i, DType dtype) {
    switch (dtype) {
        case DType::F32: return static_cast<const float*>(p)[i];
        case DType::F64: return static_cast<const double*>(p)[i];
        default: return f32_from_bf16(static_cast<const uint16_t*>(p)[i]);
    }
}

void store(void* p, int64_t i, DType dtype, double v) {
    switch (dtype) {
        case DType::F32: static_cast<float*>(p)[i] = static_cast<float>(v); break;
        case DType::F64: static_cast<double*>(p)[i] = v; break;
        // Through f32 first: double -> f32 -> bf16 rounds twice, but the f32 of a sum of bf16
        // values of few ranks is exact, and every rank rounds the same way.
        default: static_cast<uint16_t*>(p)[i] = bf16_from_f32(static_cast<float>(v)); break;
    }
}

template <typename Combine>
void reduce_with(void* out, std::span<const void* const> parts, int64_t n, DType dtype,
                 Combine combine) {
    for (int64_t i = 0; i < n; ++i) {
        double acc = load(parts[0], i, dtype);
        for (size_t k = 1; k < parts.size(); ++k) acc = combine(acc, load(parts[k], i, dtype));
        store(out, i, dtype, acc);
    }
}

}  // namespace

bool is_reducible(DType dtype) {
    return dtype == DType::F32 || dtype == DType::F64 || dtype == DType::BF16;
}

void reduce_in_order(void* out, std::span<const void* const> parts, int64_t n, DType dtype,
                     ReduceOp op) {
    TANDEM_ASSERT(is_reducible(dtype) && !parts.empty(), dtype_name(dtype), parts.size());
    // f32 sums are the hot path (gradients): added in f32, rank after rank, rounding after each,
    // which is how one rank adds its micro-batches' gradients (train/train_step.cpp). N ranks
    // then give the bits of one rank with N micro-batches of the same rows.
    // Blocks of an accumulator, so that out may be any of the parts and the loops vectorise.
    if (dtype == DType::F32 && op == ReduceOp::Sum) {
        constexpr int64_t kBlock = 1024;
        float acc[kBlock];
        for (int64_t i0 = 0; i0 < n; i0 += kBlock) {
            const int64_t m = std::min(kBlock, n - i0);
            const float* first = static_cast<const float*>(parts[0]) + i0;
            for (int64_t i = 0; i < m; ++i) acc[i] = first[i];
            for (size_t k = 1; k < parts.size(); ++k) {
                const float* part = static_cast<const float*>(parts[k]) + i0;
                for (int64_t i = 0; i < m; ++i) acc[i] += part[i];
            }
            std::copy(acc, acc + m, static_cast<float*>(out) + i0);
        }
        return;
    }
    if (op == ReduceOp::Sum) {
        reduce_with(out, parts, n, dtype, [](double a, double b) { return a + b; });
    } else {
        reduce_with(out, parts, n, dtype, [](double a, double b) {
            return std::isnan(a) || std::isnan(b) ? NAN : (a < b ? b : a);
        });
    }
}

}  // namespace tandem::dist

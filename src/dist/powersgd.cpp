// PowerSGD (Vogels, Karimireddy and Jaggi, NeurIPS 2019): each gradient matrix M [rows, cols]
// is sent as rank-R factors. One power-iteration step per training step: P = M Q is summed over
// ranks and orthonormalised, Q = Mᵀ P̂ is summed, and P̂ Qᵀ is the sum's estimate; Q is kept
// for the next step (the warm start that makes one iteration enough). Factors are held
// transposed ([R, rows], [R, cols]) so that each column is contiguous.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/rng.h"
#include "dist/compression.h"

namespace tandem::dist {

namespace {

// The products run on OpenMP threads over rows (or column blocks), each output element summed
// in one fixed order whatever the thread count, so every rank computes the same bits.

// m += grad, then pt[k][i] = sum_j m[i, j] qt[k][j]   (P = M Q), row by row while the row is in
// cache (one pass over the gradient instead of two). Eight partial sums per dot product, added
// in a fixed order at the end: the form of a float reduction that GCC vectorises without
// -ffast-math. Returns whether m is all finite.
bool add_and_multiply_m_q(float* pt, float* m, const float* grad, const float* qt, int64_t rows,
                          int64_t cols, int r) {
    int n_bad = 0;
#pragma omp parallel for schedule(static) reduction(+ : n_bad)
    for (int64_t i = 0; i < rows; ++i) {
        float* row = m + i * cols;
        const float* g = grad + i * cols;
        // c - c is NaN exactly when c is not finite; an `omp simd` reduction may reorder the
        // sum, which changes nothing here, and so it vectorises (a plain float sum does not).
        float bad = 0;
#pragma omp simd reduction(+ : bad)
        for (int64_t j = 0; j < cols; ++j) {
            row[j] += g[j];
            bad += row[j] - row[j];
        }
        n_bad += bad != 0;
        for (int k = 0; k < r; ++k) {
            const float* q = qt + k * cols;
            float part[8] = {};
            int64_t j = 0;
            for (; j + 8 <= cols; j += 8)
                for (int l = 0; l < 8; ++l) part[l] += row[j + l] * q[j + l];
            float acc = 0;
            for (; j < cols; ++j) acc += row[j] * q[j];
            for (float x : part) acc += x;
            pt[k * rows + i] = acc;
        }
    }
    return n_bad == 0;
}

// qt[k][j] = sum_i m[i, j] pt[k][i]   (Q = Mᵀ P), row by row so the inner loop is contiguous;
// threads take blocks of columns, so the sum over rows keeps its order.
void multiply_mt_p(float* qt, const float* m, const float* pt, int64_t rows, int64_t cols, int r) {
    constexpr int64_t kColumns = 256;
#pragma omp parallel for schedule(static)
    for (int64_t j0 = 0; j0 < cols; j0 += kColumns) {
        const int64_t j1 = std::min(cols, j0 + kColumns);
        for (int k = 0; k < r; ++k) std::fill(qt + k * cols + j0, qt + k * cols + j1, 0.0f);
        for (int64_t i = 0; i < rows; ++i) {
            const float* row = m + i * cols;
            for (int k = 0; k < r; ++k) {
                const float p = pt[k * rows + i];
                float* q = qt + k * cols;
                for (int64_t j = j0; j < j1; ++j) q[j] += p * row[j];
            }
        }
    }
}

// out[i, :] = sum_k pt[k][i] qt[k][:]   (P Qᵀ), and m[i, :] -= out[i, :] / n_ranks
void multiply_p_qt(float* out, float* m, const float* pt, const float* qt, int64_t rows, int64_t cols, int r,
                   float inv_ranks) {
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < rows; ++i) {
        float* o = out + i * cols;
        float* mi = m + i * cols;
        std::fill(o, o + cols, 0.0f);
        for (int k = 0; k < r; ++k) {
            const float p = pt[k * rows + i];
            const float* q = qt + k * cols;
            for (int64_t j = 0; j < cols; ++j) o[j] += p * q[j];
        }
        for (int64_t j = 0; j < cols; ++j) mi[j] -= o[j] * inv_ranks;
    }
}

// Gram-Schmidt over the R columns, accumulated in double. A column of zero norm (a zero
// gradient) stays zero rather than becoming 0/0.
void orthonormalise(float* pt, int64_t rows, int r) {
    for (int k = 0; k < r; ++k) {
        float* c = pt + k * rows;
        for (int l = 0; l < k; ++l) {
            const float* b = pt + l * rows;
            double dot = 0;
            for (int64_t i = 0; i < rows; ++i) dot += static_cast<double>(c[i]) * b[i];
            for (int64_t i = 0; i < rows; ++i) c[i] -= static_cast<float>(dot) * b[i];
        }
        double norm2 = 0;
        for (int64_t i = 0; i < rows; ++i) norm2 += static_cast<double>(c[i]) * c[i];
        const float inv = norm2 > 0 ? static_cast<float>(1.0 / std::sqrt(norm2)) : 0.0f;
        for (int64_t i = 0; i < rows; ++i) c[i] *= inv;
    }
}

}  // namespace

void GradientCompressor::powersgd(Communicator& comm, float* grad) {
    const int r = spec_.rank;
    const double n_ranks = comm.size();
    float* m = residual_.data();  // M = gradient + residual, built in the residual's place
    // A column of Q that is zero (the first call, or a block whose gradient was zero) would stay
    // zero forever: it is drawn again, from a key that every rank shares.
    int64_t q_at = 0;
    for (const GradientBlock& b : blocks_) {
        for (int k = 0; k < r; ++k, q_at += b.cols) {
            float* q = q_.data() + q_at;
            bool zero = true;
            for (int64_t j = 0; j < b.cols && zero; ++j) zero = q[j] == 0.0f;
            if (zero) fill_normal(q, b.cols, RngKey{seed_, RngPurpose::Compression, 0, 0}, q_at);
        }
    }
    // First message: every P, then the elements that travel uncompressed.
    int64_t p_size = 0, dense_size = 0;
    for (const GradientBlock& b : blocks_) p_size += r * b.rows;
    for (int64_t c : dense_counts_) dense_size += c;
    std::vector<float>& first = factors_;
    first.resize(p_size + dense_size);
    int64_t at = 0;
    q_at = 0;
    bool finite = true;
    for (const GradientBlock& b : blocks_) {
        finite &= add_and_multiply_m_q(first.data() + at, m + b.offset, grad + b.offset,
                                       q_.data() + q_at, b.rows, b.cols, r);
        at += r * b.rows;
        q_at += r * b.cols;
    }
    for (size_t d = 0; d < dense_offsets_.size(); ++d) {
        std::memcpy(first.data() + at, grad + dense_offsets_[d], sizeof(float) * dense_counts_[d]);
        at += dense_counts_[d];
    }
    comm.all_reduce(Tensor(first.data(), DType::F32, {static_cast<int64_t>(first.size())}));
    at = p_size;
    for (size_t d = 0; d < dense_offsets_.size(); ++d) {
        std::memcpy(grad + dense_offsets_[d], first.data() + at, sizeof(float) * dense_counts_[d]);
        at += dense_counts_[d];
    }
    // Second message: Q = Mᵀ P̂ of every block, summed into the warm start of the next call.
    at = 0;
    q_at = 0;
    for (const GradientBlock& b : blocks_) {
        orthonormalise(first.data() + at, b.rows, r);
        multiply_mt_p(q_.data() + q_at, m + b.offset, first.data() + at, b.rows, b.cols, r);
        at += r * b.rows;
        q_at += r * b.cols;
    }
    comm.all_reduce(Tensor(q_.data(), DType::F32, {static_cast<int64_t>(q_.size())}));
    // The estimate of the sum, P̂ Qᵀ = P̂ P̂ᵀ sum(M); this rank keeps its share of what it missed.
    at = 0;
    q_at = 0;
    for (const GradientBlock& b : blocks_) {
        multiply_p_qt(grad + b.offset, m + b.offset, first.data() + at, q_.data() + q_at, b.rows, b.cols, r,
                      static_cast<float>(1.0 / n_ranks));
        at += r * b.rows;
        q_at += r * b.cols;
    }
    // A non-finite gradient on any rank made Q non-finite on every rank: Q is drawn again next
    // call, and a residual that would carry the NaN on is dropped.
    bool q_finite = true;
    for (float v : q_) q_finite = q_finite && std::isfinite(v);
    if (!q_finite) std::fill(q_.begin(), q_.end(), 0.0f);
    if (!finite || !q_finite) std::fill(residual_.begin(), residual_.end(), 0.0f);
    payload_last_ = static_cast<uint64_t>(first.size() + q_.size()) * 4;
}

}  // namespace tandem::dist

// PowerSGD (Vogels, Karimireddy and Jaggi, NeurIPS 2019): each gradient matrix M [rows, cols]
// is sent as rank-R factors. One power-iteration step per training step: P = M Q is summed over
// ranks and orthonormalised, Q = Mᵀ P̂ is summed, and P̂ Qᵀ is the sum's estimate; Q is kept
// for the next step (the warm start that makes one iteration enough). Factors are held
// transposed ([R, rows], [R, cols]) so that each column is contiguous.
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "core/dtype.h"
#include "core/rng.h"
#include "dist/compression.h"

namespace tandem::dist {

namespace {

// The passes below are bound by the core on one thread per rank (SSE2 is the baseline), so
// their per-row work is built for AVX2 too and picked at load time. Not the backend's
// TANDEM_CPU_CLONES: its x86-64-v3 and v4 fuse multiply-adds, and ranks on different CPUs
// must compute the same bits; AVX2 alone fuses nothing.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define TANDEM_PASS __attribute__((target_clones("avx2", "default")))
#else
#define TANDEM_PASS
#endif

// The products run on OpenMP threads over rows (or ranges of columns), each output element
// summed in one fixed order whatever the thread count, so every rank computes the same bits.

// out[j - j0] = sum_k pt[k][i] qt[k][j] for j in [j0, j1): row i of P Qᵀ, or part of it, each
// element summed from zero in the order of k.
inline void estimate_columns(float* out, const float* pt, const float* qt, int64_t rows,
                             int64_t cols, int r, int64_t i, int64_t j0, int64_t j1) {
    std::fill(out, out + (j1 - j0), 0.0f);
    for (int k = 0; k < r; ++k) {
        const float p = pt[k * rows + i];
        const float* q = qt + k * cols + j0;
        for (int64_t j = 0; j < j1 - j0; ++j) out[j] += p * q[j];
    }
}

// A row of `cols` floats for each thread, kept between calls.
float* row_buffer(int64_t cols) {
    thread_local std::vector<float> row;
    if (static_cast<int64_t>(row.size()) < cols) row.resize(cols);
    return row.data();
}

// Row i of the last call's residual made whole: m_i -= (P̂ Qᵀ)_i / n_ranks.
TANDEM_PASS void subtract_estimate_row(float* mi, const float* pt, const float* qt, int64_t rows,
                                       int64_t cols, int r, int64_t i, float inv_ranks) {
    float* o = row_buffer(cols);
    estimate_columns(o, pt, qt, rows, cols, r, i, 0, cols);
    for (int64_t j = 0; j < cols; ++j) mi[j] -= o[j] * inv_ranks;
}

// The last call's residual, made whole: m -= (P̂ Qᵀ) / n_ranks (`pt`, `qt`: that call's
// factors).
void subtract_estimate(float* m, const float* pt, const float* qt, int64_t rows, int64_t cols,
                       int r, float inv_ranks) {
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < rows; ++i)
        subtract_estimate_row(m + i * cols, pt, qt, rows, cols, r, i, inv_ranks);
}

// Row i of add_and_multiply_m_q; returns whether the row is all finite.
TANDEM_PASS bool add_and_multiply_row(float* pt, float* row, const float* g, const float* qt,
                                      int64_t rows, int64_t cols, int r, int64_t i,
                                      const float* last_pt, float inv_ranks) {
    if (last_pt) subtract_estimate_row(row, last_pt, qt, rows, cols, r, i, inv_ranks);
    // c - c is NaN exactly when c is not finite; an `omp simd` reduction may reorder the sum,
    // which changes nothing here, and so it vectorises (a plain float sum does not).
    float bad = 0;
#pragma omp simd reduction(+ : bad)
    for (int64_t j = 0; j < cols; ++j) {
        row[j] += g[j];
        bad += row[j] - row[j];
    }
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
    return bad == 0;
}

// m += grad, then pt[k][i] = sum_j m[i, j] qt[k][j]   (P = M Q), row by row while the row is in
// cache (one pass over the gradient instead of two). With `last_pt`, m first becomes the last
// call's residual (subtract_estimate, with the same Q, whose columns this call multiplies by
// again): that pass is folded into this one. last_pt may be pt: row i reads its own factors
// before it writes them. Eight partial sums per dot product, added in a fixed order at the
// end: the form of a float reduction that GCC vectorises without -ffast-math. Returns whether m
// is all finite.
bool add_and_multiply_m_q(float* pt, float* m, const float* grad, const float* qt, int64_t rows,
                          int64_t cols, int r, const float* last_pt, float inv_ranks) {
    int n_bad = 0;
#pragma omp parallel for schedule(static) reduction(+ : n_bad)
    for (int64_t i = 0; i < rows; ++i)
        n_bad += !add_and_multiply_row(pt, m + i * cols, grad + i * cols, qt, rows, cols, r, i,
                                       last_pt, inv_ranks);
    return n_bad == 0;
}

// qt[k][j0, j1) = sum_i m[i, j] pt[k][i], the rows in order.
TANDEM_PASS void multiply_mt_p_columns(float* qt, const float* m, const float* pt, int64_t rows,
                                       int64_t cols, int r, int64_t j0, int64_t j1) {
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

// qt[k][j] = sum_i m[i, j] pt[k][i]   (Q = Mᵀ P), row after row, so that each element's sum
// keeps the order of the rows. Each thread takes a contiguous range of columns and streams the
// rows through it: with one thread, m is read once, front to back.
void multiply_mt_p(float* qt, const float* m, const float* pt, int64_t rows, int64_t cols, int r) {
#pragma omp parallel
    {
        const int64_t n_threads = omp_get_num_threads(), t = omp_get_thread_num();
        const int64_t width = (cols + n_threads - 1) / n_threads;
        const int64_t j0 = std::min(cols, t * width), j1 = std::min(cols, j0 + width);
        if (j0 < j1) multiply_mt_p_columns(qt, m, pt, rows, cols, r, j0, j1);
    }
}

// estimate_columns for fill_output, built for AVX2 too.
TANDEM_PASS void estimate_part(float* out, const float* pt, const float* qt, int64_t rows,
                               int64_t cols, int r, int64_t i, int64_t j0, int64_t j1) {
    estimate_columns(out, pt, qt, rows, cols, r, i, j0, j1);
}

// sum_ij (P Qᵀ)_ij² = sum_kl (Pᵀ P)_kl (Qᵀ Q)_kl, in double, without forming P Qᵀ.
double estimate_squares(const float* pt, const float* qt, int64_t rows, int64_t cols, int r) {
    const auto dot = [](const float* a, const float* b, int64_t n) {
        double s = 0;
        for (int64_t i = 0; i < n; ++i) s += double(a[i]) * double(b[i]);
        return s;
    };
    double total = 0;
    for (int k = 0; k < r; ++k)
        for (int l = 0; l < r; ++l)
            total +=
                dot(pt + k * rows, pt + l * rows, rows) * dot(qt + k * cols, qt + l * cols, cols);
    return total;
}

// Row i of P Qᵀ into out; returns the sum of its squares.
TANDEM_PASS double estimate_row_and_squares(float* out, const float* pt, const float* qt,
                                            int64_t rows, int64_t cols, int r, int64_t i) {
    estimate_columns(out, pt, qt, rows, cols, r, i, 0, cols);
    double squares[4] = {};  // four partial sums, added in a fixed order
    int64_t j = 0;
    for (; j + 4 <= cols; j += 4)
        for (int l = 0; l < 4; ++l) squares[l] += double(out[j + l]) * double(out[j + l]);
    double total = 0;
    for (; j < cols; ++j) total += double(out[j]) * double(out[j]);
    for (double x : squares) total += x;
    return total;
}

// out[i, :] = sum_k pt[k][i] qt[k][:]   (P Qᵀ); returns the sum of out's squares, the rows' sums
// added in order. The residual's share of the estimate is taken from m at the next call
// (add_and_multiply_m_q), or by settle() before anyone reads the residual.
double multiply_p_qt(float* out, const float* pt, const float* qt, int64_t rows, int64_t cols,
                     int r) {
    std::vector<double> row_squares(rows);
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < rows; ++i)
        row_squares[i] = estimate_row_and_squares(out + i * cols, pt, qt, rows, cols, r, i);
    double total = 0;
    for (double x : row_squares) total += x;
    return total;
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

// Sums `values` over ranks as the spec's factors travel: f32 in place, or rounded to bf16 (the
// sum is the bf16 of the exact sum) and widened back.
void GradientCompressor::all_reduce_factors(Communicator& comm, float* values, int64_t n) {
    if (!spec_.bf16_factors) {
        comm.all_reduce(Tensor(values, DType::F32, {n}));
        return;
    }
    wire_.resize(n);
    for (int64_t i = 0; i < n; ++i) wire_[i] = bf16_from_f32(values[i]);
    comm.all_reduce(Tensor(wire_.data(), DType::BF16, {n}));
    for (int64_t i = 0; i < n; ++i) values[i] = f32_from_bf16(wire_[i]);
}

void GradientCompressor::settle() {
    if (!estimate_pending_) return;
    int64_t at = 0, q_at = 0;
    for (const GradientBlock& b : blocks_) {
        subtract_estimate(residual_.data() + b.offset, factors_.data() + at, q_.data() + q_at,
                          b.rows, b.cols, spec_.rank, pending_inv_ranks_);
        at += spec_.rank * b.rows;
        q_at += spec_.rank * b.cols;
    }
    estimate_pending_ = false;
}

void GradientCompressor::powersgd(Communicator& comm, float* grad, bool may_defer_output) {
    const int r = spec_.rank;
    const double n_ranks = comm.size();
    float* m = residual_.data();  // M = gradient + residual, built in the residual's place
    // A column of Q that is zero (the first call, or a block whose gradient was zero) would stay
    // zero forever: it is drawn again, from a key that every rank shares. The last call's
    // residual is made whole first, with the Q it was computed from.
    const auto is_zero = [](const float* q, int64_t n) {
        return std::all_of(q, q + n, [](float v) { return v == 0.0f; });
    };
    bool has_zero_column = false;
    int64_t q_at = 0;
    for (const GradientBlock& b : blocks_)
        for (int k = 0; k < r; ++k, q_at += b.cols)
            has_zero_column |= is_zero(q_.data() + q_at, b.cols);
    if (has_zero_column) {
        settle();
        q_at = 0;
        for (const GradientBlock& b : blocks_)
            for (int k = 0; k < r; ++k, q_at += b.cols)
                if (is_zero(q_.data() + q_at, b.cols))
                    fill_normal(q_.data() + q_at, b.cols,
                                RngKey{seed_, RngPurpose::Compression, 0, 0}, q_at);
    }
    // First message: every P, then the elements that travel uncompressed (as bf16 with their
    // own error feedback when the factors travel as bf16).
    int64_t p_size = 0, dense_size = 0;
    for (const GradientBlock& b : blocks_) p_size += r * b.rows;
    for (int64_t c : dense_counts_) dense_size += c;
    std::vector<float>& first = factors_;  // P̂ of the last call until this one's P replaces it
    first.resize(p_size + dense_size);
    int64_t at = 0;
    q_at = 0;
    bool finite = true;
    for (const GradientBlock& b : blocks_) {
        finite &= add_and_multiply_m_q(
            first.data() + at, m + b.offset, grad + b.offset, q_.data() + q_at, b.rows, b.cols, r,
            estimate_pending_ ? first.data() + at : nullptr, pending_inv_ranks_);
        at += r * b.rows;
        q_at += r * b.cols;
    }
    estimate_pending_ = false;
    for (size_t d = 0; d < dense_offsets_.size(); ++d) {
        const float* g = grad + dense_offsets_[d];
        float* out = first.data() + at;
        if (spec_.bf16_factors) {  // c = g + residual; send bf16(c); keep c - bf16(c)
            float* res = m + dense_offsets_[d];
            for (int64_t i = 0; i < dense_counts_[d]; ++i) {
                const float c = g[i] + res[i];
                finite &= std::isfinite(c);
                out[i] = f32_from_bf16(bf16_from_f32(c));
                res[i] = c - out[i];
            }
        } else {
            std::memcpy(out, g, sizeof(float) * dense_counts_[d]);
        }
        at += dense_counts_[d];
    }
    all_reduce_factors(comm, first.data(), static_cast<int64_t>(first.size()));
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
    all_reduce_factors(comm, q_.data(), static_cast<int64_t>(q_.size()));
    // The estimate of the sum, P̂ Qᵀ = P̂ P̂ᵀ sum(M), goes into grad with the sum of its squares;
    // or, where the caller may take it later, it stays as its factors (fill_output() forms it
    // piece by piece where it is read, in the optimizer's update) and the sum comes from them.
    // This rank's share of what it missed, M less the estimate over the ranks, is taken at the
    // next call (or by settle()). A non-finite gradient on any rank made Q non-finite on every
    // rank: then the estimate is written out as it is (the NaN must reach the guard), Q is
    // drawn again next call, and a residual that would carry the NaN on is dropped.
    bool q_finite = true;
    for (float v : q_) q_finite = q_finite && std::isfinite(v);
    output_deferred_ = may_defer_output && q_finite;
    at = 0;
    q_at = 0;
    double squares = 0;
    for (const GradientBlock& b : blocks_) {
        squares += output_deferred_
                       ? estimate_squares(first.data() + at, q_.data() + q_at, b.rows, b.cols, r)
                       : multiply_p_qt(grad + b.offset, first.data() + at, q_.data() + q_at, b.rows,
                                       b.cols, r);
        at += r * b.rows;
        q_at += r * b.cols;
    }
    for (size_t d = 0; d < dense_offsets_.size(); ++d) {
        const float* g = grad + dense_offsets_[d];
        for (int64_t i = 0; i < dense_counts_[d]; ++i) squares += double(g[i]) * double(g[i]);
    }
    sum_squares_last_ = squares;
    if (!q_finite) std::fill(q_.begin(), q_.end(), 0.0f);
    if (!finite || !q_finite) {
        std::fill(residual_.begin(), residual_.end(), 0.0f);
    } else {
        estimate_pending_ = true;
        pending_inv_ranks_ = static_cast<float>(1.0 / n_ranks);
    }
    payload_last_ = static_cast<uint64_t>(first.size() + q_.size()) * (spec_.bf16_factors ? 2 : 4);
}

void GradientCompressor::fill_output(const float* grad, int64_t begin, int64_t count,
                                     float* out) const {
    const int64_t end = begin + count;
    const int r = spec_.rank;
    // Elements [x, to) that no block covers come from grad as they are.
    const auto copy_dense = [&](int64_t x, int64_t to) {
        if (to > x && out + (x - begin) != grad + x)
            std::copy(grad + x, grad + to, out + (x - begin));
    };
    int64_t x = begin, at = 0, q_at = 0;
    for (const GradientBlock& b : blocks_) {
        const int64_t b_end = b.offset + b.rows * b.cols;
        if (b.offset >= end) break;
        if (output_deferred_ && b_end > begin) {
            const int64_t lo = std::max(begin, b.offset), hi = std::min(end, b_end);
            copy_dense(x, lo);
            for (int64_t i = (lo - b.offset) / b.cols; b.offset + i * b.cols < hi; ++i) {
                const int64_t row = b.offset + i * b.cols;
                const int64_t j0 = std::max(lo, row) - row, j1 = std::min(hi, row + b.cols) - row;
                estimate_part(out + (row + j0 - begin), factors_.data() + at, q_.data() + q_at,
                              b.rows, b.cols, r, i, j0, j1);
            }
            x = hi;
        }
        at += r * b.rows;
        q_at += r * b.cols;
    }
    copy_dense(x, end);
}

}  // namespace tandem::dist

// The body of a PagedBlock (paged_attention_blocks.h), written once over a vector type and
// compiled by each instruction set's file (paged_attention_{generic,avx2,avx512}.cpp) under its
// own target. No include guard and nothing outside the anonymous namespace: every file that
// includes it gets its own copy, so no function compiled for AVX-512 can stand in for another's.
// The including file defines `struct Vec` first (kLanes, zero, load, store, set1, fma, max_of and
// sum_of over n floats, and the tile shapes kScoreRows/kScoreVecs and kValueRows/kValueVecs) and
// includes what this uses.
//
// Per key block of kKeyBlock keys: S = Q K^T for the block's M = rows x group query vectors
// (register tiles of kScoreRows x kScoreVecs vectors of keys, one broadcast of q per row and
// one load of K^T per vector, per step of d), then the online softmax of each row over the keys
// it may see, then O += P V (tiles of kValueRows x kValueVecs vectors of d, one broadcast of p
// per row and one load of v per vector, per key). The causal mask costs only in the blocks that
// cross the diagonal: elsewhere every row sees every key.

namespace {

using VecT = Vec::V;

// S[m, c0 + c] = sum_d Q[m, d] KT[d, c0 + c] for m in [m0, m0 + MR), c < NV lanes.
template <int MR, int NV>
inline void scores_tile(float* S, const float* Q, const float* KT, int64_t D, int64_t m0,
                        int64_t c0) {
    VecT acc[MR][NV];
#pragma GCC unroll 8
    for (int i = 0; i < MR; ++i)
#pragma GCC unroll 8
        for (int v = 0; v < NV; ++v) acc[i][v] = Vec::zero();
    for (int64_t d = 0; d < D; ++d) {
        VecT k[NV];
#pragma GCC unroll 8
        for (int v = 0; v < NV; ++v) k[v] = Vec::load(KT + d * kKeyBlock + c0 + v * Vec::kLanes);
#pragma GCC unroll 8
        for (int i = 0; i < MR; ++i) {
            const VecT q = Vec::set1(Q[(m0 + i) * D + d]);
#pragma GCC unroll 8
            for (int v = 0; v < NV; ++v) acc[i][v] = Vec::fma(q, k[v], acc[i][v]);
        }
    }
#pragma GCC unroll 8
    for (int i = 0; i < MR; ++i)
#pragma GCC unroll 8
        for (int v = 0; v < NV; ++v)
            Vec::store(S + (m0 + i) * kKeyBlock + c0 + v * Vec::kLanes, acc[i][v]);
}

// The scores of rows [m0, m0 + MR) against the block's first `cols` keys (rounded up to whole
// vectors; K^T is zero past the last key): full tiles of kScoreVecs vectors, then one narrower.
template <int MR, int NV = Vec::kScoreVecs>
inline void scores_cols(float* S, const float* Q, const float* KT, int64_t D, int64_t m0,
                        int64_t c0, int64_t cols) {
    for (; c0 + NV * Vec::kLanes <= cols; c0 += NV * Vec::kLanes)
        scores_tile<MR, NV>(S, Q, KT, D, m0, c0);
    if (c0 >= cols) return;
    if constexpr (NV > 1)
        scores_cols<MR, NV - 1>(S, Q, KT, D, m0, c0, cols);
    else
        scores_tile<MR, 1>(S, Q, KT, D, m0, c0);  // (a last partial vector: padding)
}

// O[m, d0 + e] += sum_{i < keys} P[m, i] V_i[d0 + e] for m in [m0, m0 + MR), e < NV lanes.
template <int MR, int NV>
inline void values_tile(float* O, const float* P, const float* const* V, int64_t keys, int64_t D,
                        int64_t m0, int64_t d0) {
    VecT acc[MR][NV];
#pragma GCC unroll 8
    for (int i = 0; i < MR; ++i)
#pragma GCC unroll 8
        for (int v = 0; v < NV; ++v) acc[i][v] = Vec::load(O + (m0 + i) * D + d0 + v * Vec::kLanes);
    for (int64_t k = 0; k < keys; ++k) {
        VecT x[NV];
        const float* row = V[k] + d0;
#pragma GCC unroll 8
        for (int v = 0; v < NV; ++v) x[v] = Vec::load(row + v * Vec::kLanes);
#pragma GCC unroll 8
        for (int i = 0; i < MR; ++i) {
            const VecT p = Vec::set1(P[(m0 + i) * kKeyBlock + k]);
#pragma GCC unroll 8
            for (int v = 0; v < NV; ++v) acc[i][v] = Vec::fma(p, x[v], acc[i][v]);
        }
    }
#pragma GCC unroll 8
    for (int i = 0; i < MR; ++i)
#pragma GCC unroll 8
        for (int v = 0; v < NV; ++v) Vec::store(O + (m0 + i) * D + d0 + v * Vec::kLanes, acc[i][v]);
}

// Calls tile.template operator()<R>(m0) over [0, M) in tiles of MR rows, the rest in one
// smaller tile (a template argument each, so that every tile's accumulators stay in registers).
template <int MR, class Tile>
inline void rest_of_rows(int64_t m0, int64_t left, Tile& tile) {
    if (left == MR)
        tile.template operator()<MR>(m0);
    else if constexpr (MR > 1)
        rest_of_rows<MR - 1>(m0, left, tile);
}
template <int MR, class Tile>
inline void over_rows(int64_t M, Tile&& tile) {
    int64_t m0 = 0;
    for (; m0 + MR <= M; m0 += MR) tile.template operator()<MR>(m0);
    if (m0 < M) rest_of_rows<MR - 1>(m0, M - m0, tile);
}

// One row's online softmax over a block: s holds its `keys` scores, the first `valid` of which
// it sees. s becomes e^(s - max), 0 where masked; max, sum and the row's output o (D) are
// rescaled to the new running max.
inline void softmax_update(float* s, int64_t valid, int64_t keys, float& max, float& sum, float* o,
                           int64_t D) {
    if (valid <= 0) {
        for (int64_t i = 0; i < keys; ++i) s[i] = 0.0f;
        return;
    }
    // (Vec's reductions: an `omp simd reduction` ends in a serial loop over the lanes, which
    // took a quarter of the time at 64 keys a block.)
    const float block_max = Vec::max_of(s, valid);
    const float new_max = block_max > max ? block_max : max;
#pragma omp simd
    for (int64_t i = 0; i < valid; ++i) s[i] = exp_approx(s[i] - new_max);
    const float total = Vec::sum_of(s, valid);
    for (int64_t i = valid; i < keys; ++i) s[i] = 0.0f;
    if (new_max != max) {  // (the first block: max is -inf, the correction 0, o still zero)
        const float correction = exp_approx(max - new_max);
        sum *= correction;
#pragma omp simd
        for (int64_t d = 0; d < D; ++d) o[d] *= correction;
        max = new_max;
    }
    sum += total;
}

// Scratch: Q [M, D] (scaled), S [M, kKeyBlock], O [M, D], max and sum [M].
void run_block(const PagedBlock& b, std::vector<float>& scratch) {
    const int64_t group = b.H / b.Hkv, M = b.rows * group, D = b.D;
    const size_t need = static_cast<size_t>(M * (2 * D + kKeyBlock + 2));
    if (scratch.size() < need) scratch.resize(need);
    float* Q = scratch.data();
    float* S = Q + M * D;
    float* O = S + M * kKeyBlock;
    float* row_max = O + M * D;
    float* row_sum = row_max + M;

    const float scale = 1.0f / std::sqrt(static_cast<float>(D));
    for (int64_t r = 0; r < b.rows; ++r) {
        const float* q = b.qkv + (b.row0 + r) * b.W + b.g * group * D;
        float* dst = Q + r * group * D;
#pragma omp simd
        for (int64_t e = 0; e < group * D; ++e) dst[e] = q[e] * scale;
    }
    for (int64_t e = 0; e < M * D; ++e) O[e] = 0.0f;
    for (int64_t m = 0; m < M; ++m) {
        row_max[m] = -INFINITY;
        row_sum[m] = 0.0f;
    }

    const int64_t limit = b.pos0 + b.rows;  // keys [0, limit): what the last row sees
    const int64_t value_vecs = D % (Vec::kValueVecs * Vec::kLanes) == 0 ? Vec::kValueVecs : 1;
    for (int64_t k0 = 0, panel = 0; k0 < limit; k0 += kKeyBlock, ++panel) {
        const int64_t keys = std::min(kKeyBlock, limit - k0);
        const float* KT = b.keys_t + panel * D * kKeyBlock;
        // Rows that see none of this block (the first rows, in a block past their diagonal)
        // take no part; rows are in position order, group heads each. A tile of rows computes
        // only the keys its last row sees.
        const int64_t m_begin = std::max<int64_t>(0, k0 - b.pos0) * group;
        const auto seen = [&](int64_t m_last) {
            return std::min(keys, b.pos0 + m_last / group + 1 - k0);
        };
        over_rows<Vec::kScoreRows>(M - m_begin, [&]<int R>(int64_t m0) {
            scores_cols<R>(S, Q, KT, D, m_begin + m0, 0, seen(m_begin + m0 + R - 1));
        });
        for (int64_t m = m_begin; m < M; ++m)
            softmax_update(S + m * kKeyBlock, seen(m), keys, row_max[m], row_sum[m], O + m * D, D);
        const float* const* V = b.value_rows + k0;
        for (int64_t d0 = 0; d0 < D; d0 += value_vecs * Vec::kLanes)
            over_rows<Vec::kValueRows>(M - m_begin, [&]<int R>(int64_t m0) {
                const int64_t m = m_begin + m0, used = seen(m + R - 1);
                if (value_vecs == Vec::kValueVecs)
                    values_tile<R, Vec::kValueVecs>(O, S, V, used, D, m, d0);
                else
                    values_tile<R, 1>(O, S, V, used, D, m, d0);
            });
    }

    for (int64_t m = 0; m < M; ++m) {
        const int64_t r = m / group, j = m % group;
        float* o = b.out + (b.row0 + r) * b.H * D + (b.g * group + j) * D;
        const float inv = 1.0f / row_sum[m];
#pragma omp simd
        for (int64_t d = 0; d < D; ++d) o[d] = O[m * D + d] * inv;
    }
}

}  // namespace

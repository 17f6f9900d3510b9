// The shape and dtype rules of backend.h, one function per kernel.
#include "backend/checks.h"

namespace tandem::backend::checks {

namespace {

// Every float tensor of a call shares the compute dtype; saved statistics use stats_dtype.
void expect_dtype(const Tensor& t, DType want) {
    TANDEM_ASSERT(t.dtype == want, dtype_name(t.dtype), dtype_name(want), t.str());
}
void expect_shape(const Tensor& t, Shape want) {
    TANDEM_ASSERT(t.shape == want, t.str(), want.str());
}
void expect(const Tensor& t, DType dtype, Shape shape) {
    TANDEM_ASSERT(!t.empty() || shape.numel() == 0, t.str());
    expect_dtype(t, dtype);
    expect_shape(t, shape);
}
// Saved statistics and per-row vectors may be shaped [N] or [B, T]: only the count matters.
void expect_rows(const Tensor& t, DType dtype, int64_t n) {
    TANDEM_ASSERT(!t.empty() || n == 0, t.str());
    expect_dtype(t, dtype);
    TANDEM_ASSERT(t.numel() == n, t.str(), n);
}
bool is_float(DType dtype) {
    return dtype != DType::I32;
}
// A weight table read by rows: the compute dtype, or (for an f32 computation) a storage dtype
// whose rows are whole blocks.
void expect_table(const Tensor& t, DType compute, Shape shape) {
    expect_shape(t, shape);
    if (t.dtype == compute) return;
    TANDEM_ASSERT(compute == DType::F32 && (t.dtype == DType::F16 || t.dtype == DType::BF16 ||
                                            t.dtype == DType::Q8_0 || t.dtype == DType::Q4_0),
                  dtype_name(t.dtype), dtype_name(compute), t.str());
    TANDEM_ASSERT(t.cols() % dtype_block_values(t.dtype) == 0, t.str());
}

}  // namespace

void embedding_forward(const Tensor& out, const Tensor& tokens, const Tensor& wte,
                       const Tensor& wpe, int64_t pos_offset) {
    TANDEM_ASSERT(out.ndim() == 3 && wte.ndim() == 2 && is_float(out.dtype), out.str(), wte.str());
    const int64_t B = out.size(0), T = out.size(1), C = out.size(2);
    expect(tokens, DType::I32, {B, T});
    // The tables may be in a storage dtype (inference weights: backend.h).
    expect_table(wte, out.dtype, {wte.size(0), C});
    if (!wpe.empty()) {
        TANDEM_ASSERT(wpe.ndim() == 2 && pos_offset >= 0 && pos_offset + T <= wpe.size(0),
                      wpe.str(), pos_offset, T);
        expect_table(wpe, out.dtype, {wpe.size(0), C});
    }
}

void embedding_backward(const Tensor& dwte, const Tensor& dwpe, const Tensor& dout,
                        const Tensor& tokens) {
    TANDEM_ASSERT(dout.ndim() == 3 && dwte.ndim() == 2 && is_float(dout.dtype), dout.str(),
                  dwte.str());
    const int64_t B = dout.size(0), T = dout.size(1), C = dout.size(2);
    expect(tokens, DType::I32, {B, T});
    expect(dwte, dout.dtype, {dwte.size(0), C});
    if (!dwpe.empty()) {
        TANDEM_ASSERT(dwpe.ndim() == 2 && T <= dwpe.size(0), dwpe.str(), T);
        expect(dwpe, dout.dtype, {dwpe.size(0), C});
    }
}

void layer_norm_forward(const Tensor& y, const Tensor& mean, const Tensor& rstd, const Tensor& x,
                        const Tensor& weight, const Tensor& bias) {
    TANDEM_ASSERT(is_float(x.dtype) && x.ndim() >= 1, x.str());
    const DType stats = stats_dtype(x.dtype);
    expect(y, x.dtype, x.shape);
    expect_rows(mean, stats, x.rows());
    expect_rows(rstd, stats, x.rows());
    expect(weight, x.dtype, {x.cols()});
    expect(bias, x.dtype, {x.cols()});
}

void layer_norm_backward(const Tensor& dx, const Tensor& dweight, const Tensor& dbias,
                         const Tensor& dy, const Tensor& x, const Tensor& weight,
                         const Tensor& mean, const Tensor& rstd) {
    layer_norm_forward(dy, mean, rstd, x, weight, weight);
    expect(dx, x.dtype, x.shape);
    expect(dweight, x.dtype, {x.cols()});
    expect(dbias, x.dtype, {x.cols()});
}

void rms_norm_forward(const Tensor& y, const Tensor& rstd, const Tensor& x, const Tensor& weight) {
    TANDEM_ASSERT(is_float(x.dtype) && x.ndim() >= 1, x.str());
    expect(y, x.dtype, x.shape);
    expect_rows(rstd, stats_dtype(x.dtype), x.rows());
    expect(weight, x.dtype, {x.cols()});
}

void rms_norm_backward(const Tensor& dx, const Tensor& dweight, const Tensor& dy, const Tensor& x,
                       const Tensor& weight, const Tensor& rstd) {
    rms_norm_forward(dy, rstd, x, weight);
    expect(dx, x.dtype, x.shape);
    expect(dweight, x.dtype, {x.cols()});
}

AttentionDims qkv_layout(const Tensor& qkv, int64_t H, int64_t Hkv) {
    TANDEM_ASSERT(qkv.ndim() == 3 && is_float(qkv.dtype), qkv.str());
    TANDEM_ASSERT(H > 0 && Hkv > 0 && H % Hkv == 0, H, Hkv);
    const int64_t heads = H + 2 * Hkv;
    TANDEM_ASSERT(qkv.size(2) % heads == 0, qkv.str(), H, Hkv);
    return {qkv.size(0), qkv.size(1), H, Hkv, qkv.size(2) / heads};
}

void qk_norm(const Tensor& y, const Tensor& rstd, const Tensor& qkv, const Tensor& q_weight,
             const Tensor& k_weight, int64_t H, int64_t Hkv) {
    const AttentionDims d = qkv_layout(qkv, H, Hkv);
    expect(y, qkv.dtype, qkv.shape);
    expect_rows(rstd, stats_dtype(qkv.dtype), d.B * d.T * (H + Hkv));
    expect(q_weight, qkv.dtype, {d.D});
    expect(k_weight, qkv.dtype, {d.D});
}

MatmulDims matmul(const Tensor& out, const Tensor& a, const Tensor& b, const Tensor& bias,
                  bool trans_a, bool trans_b) {
    const int nd = out.ndim();
    TANDEM_ASSERT((nd == 2 || nd == 3) && a.ndim() == nd && b.ndim() == nd, out.str(), a.str(),
                  b.str());
    TANDEM_ASSERT(is_float(out.dtype), out.str());
    expect_dtype(a, out.dtype);
    expect_dtype(b, out.dtype);
    const int64_t S = nd == 3 ? out.size(0) : 1;
    const int64_t M = out.size(-2), N = out.size(-1);
    const int64_t K = trans_a ? a.size(-2) : a.size(-1);
    const Shape a_want = trans_a ? Shape{K, M} : Shape{M, K};
    const Shape b_want = trans_b ? Shape{N, K} : Shape{K, N};
    if (nd == 3) {
        expect_shape(a, {S, a_want[0], a_want[1]});
        expect_shape(b, {S, b_want[0], b_want[1]});
        TANDEM_ASSERT(bias.empty(), "a batched matmul takes no bias", bias.str());
    } else {
        expect_shape(a, a_want);
        expect_shape(b, b_want);
        if (!bias.empty()) expect(bias, out.dtype, {N});
    }
    return {S, M, N, K};
}

MatmulWeightsDims matmul_weights(const Tensor& out, const Tensor& x, const Tensor& w,
                                 const Tensor& bias, bool w_is_in_out) {
    TANDEM_ASSERT(is_float(out.dtype) && !is_block_dtype(out.dtype) && out.ndim() >= 1,
                  out.str());
    expect_dtype(x, out.dtype);
    TANDEM_ASSERT(w.ndim() == 2, w.str());
    const int64_t N = out.rows(), O = out.cols(), K = x.cols();
    TANDEM_ASSERT(x.rows() == N, x.str(), out.str());
    expect_shape(w, w_is_in_out ? Shape{K, O} : Shape{O, K});
    TANDEM_ASSERT(w.dtype == DType::F32 || w.dtype == DType::F16 || w.dtype == DType::BF16 ||
                      w.dtype == DType::Q8_0 || w.dtype == DType::Q4_0,
                  "matmul_weights: unsupported weight dtype", w.str());
    // A block dtype's blocks run along the stored rows.
    TANDEM_ASSERT(w.cols() % dtype_block_values(w.dtype) == 0,
                  "matmul_weights: weight rows are not whole blocks", w.str());
    if (!bias.empty()) expect(bias, out.dtype, {O});
    return {N, O, K};
}

void bias_backward(const Tensor& dbias, const Tensor& dout) {
    TANDEM_ASSERT(is_float(dout.dtype) && dout.ndim() >= 1, dout.str());
    expect(dbias, dout.dtype, {dout.cols()});
}

void same_shape(const Tensor& a, const Tensor& b) {
    TANDEM_ASSERT(is_float(b.dtype), b.str());
    expect(a, b.dtype, b.shape);
}

void swiglu(const Tensor& y, const Tensor& gate_up) {
    TANDEM_ASSERT(is_float(y.dtype) && y.ndim() >= 1, y.str());
    expect_dtype(gate_up, y.dtype);
    TANDEM_ASSERT(gate_up.rows() == y.rows() && gate_up.cols() == 2 * y.cols(), gate_up.str(),
                  y.str());
}

void attention_forward(const Tensor& out, const Tensor& lse, const Tensor& qkv, int64_t H,
                       int64_t Hkv) {
    const AttentionDims d = qkv_layout(qkv, H, Hkv);
    expect(out, qkv.dtype, {d.B, d.T, H * d.D});
    expect(lse, stats_dtype(qkv.dtype), {d.B, H, d.T});
}

void attention_backward(const Tensor& dqkv, const Tensor& dout, const Tensor& qkv,
                        const Tensor& out, const Tensor& lse, int64_t H, int64_t Hkv) {
    attention_forward(out, lse, qkv, H, Hkv);
    expect(dout, out.dtype, out.shape);
    expect(dqkv, qkv.dtype, qkv.shape);
}

void embedding_at_forward(const Tensor& out, const Tensor& tokens, const Tensor& positions,
                          const Tensor& wte, const Tensor& wpe) {
    TANDEM_ASSERT(out.ndim() == 2 && wte.ndim() == 2 && is_float(out.dtype), out.str(), wte.str());
    const int64_t N = out.size(0), C = out.size(1), V = wte.size(0);
    expect(tokens, DType::I32, {N});
    expect(positions, DType::I32, {N});
    TANDEM_ASSERT(is_float(wte.dtype) && wte.size(1) == C, wte.str(), out.str());
    const int64_t T_max = wpe.empty() ? 0 : wpe.size(0);
    if (!wpe.empty())
        TANDEM_ASSERT(wpe.ndim() == 2 && is_float(wpe.dtype) && wpe.size(1) == C, wpe.str(),
                      out.str());
    if (tokens.device != Device::Host) return;
    for (int64_t n = 0; n < N; ++n) {
        const int32_t id = tokens.as<int32_t>()[n], pos = positions.as<int32_t>()[n];
        TANDEM_ASSERT(id >= 0 && id < V, "token out of the vocabulary", n, id, V);
        TANDEM_ASSERT(pos >= 0 && (wpe.empty() || pos < T_max), "position out of wpe", n, pos,
                      T_max);
    }
}

void rope_at(const Tensor& qkv, const Tensor& positions, int64_t H, int64_t Hkv) {
    TANDEM_ASSERT(qkv.ndim() == 2 && is_float(qkv.dtype), qkv.str());
    TANDEM_ASSERT(H > 0 && Hkv > 0 && H % Hkv == 0 && qkv.size(1) % (H + 2 * Hkv) == 0, H, Hkv,
                  qkv.str());
    TANDEM_ASSERT((qkv.size(1) / (H + 2 * Hkv)) % 2 == 0, "RoPE needs an even head dim",
                  qkv.str());
    expect(positions, DType::I32, {qkv.size(0)});
    if (positions.device != Device::Host) return;
    for (int64_t n = 0; n < qkv.size(0); ++n)
        TANDEM_ASSERT(positions.as<int32_t>()[n] >= 0, n, positions.as<int32_t>()[n]);
}

namespace {

// Shapes and dtypes of a paged call, and on the host every row's sequence, position and the
// pages it touches: only the page of its own position when writing, every page of [0, pos]
// when attending.
PagedDims paged(const Tensor& k_pages, const Tensor& v_pages, const Tensor& qkv,
                const Tensor& page_table, const Tensor& seq_index, const Tensor& positions,
                int64_t H, int64_t Hkv, bool reads_context) {
    TANDEM_ASSERT(qkv.ndim() == 2 && is_float(qkv.dtype), qkv.str());
    TANDEM_ASSERT(H > 0 && Hkv > 0 && H % Hkv == 0 && qkv.size(1) % (H + 2 * Hkv) == 0, H, Hkv,
                  qkv.str());
    const int64_t N = qkv.size(0), D = qkv.size(1) / (H + 2 * Hkv);
    TANDEM_ASSERT(k_pages.ndim() == 3 && page_table.ndim() == 2, k_pages.str(), page_table.str());
    const DType cache = k_pages.dtype;
    TANDEM_ASSERT(cache == DType::F32 || cache == DType::F16 ||
                      (cache == DType::F64 && qkv.dtype == DType::F64),
                  "the kv cache is f32 or f16 (f64 with f64 activations)", k_pages.str(),
                  qkv.str());
    const PagedDims d{N, H, Hkv, D, k_pages.size(0), k_pages.size(1), page_table.size(0),
                      page_table.size(1)};
    expect(k_pages, cache, {d.n_pages, d.page_size, Hkv * D});
    expect(v_pages, cache, {d.n_pages, d.page_size, Hkv * D});
    expect(page_table, DType::I32, {d.n_seqs, d.pages_per_seq});
    expect(seq_index, DType::I32, {N});
    expect(positions, DType::I32, {N});
    if (page_table.device != Device::Host) return d;
    const int32_t* table = page_table.as<int32_t>();
    for (int64_t n = 0; n < N; ++n) {
        const int64_t s = seq_index.as<int32_t>()[n], pos = positions.as<int32_t>()[n];
        TANDEM_ASSERT(s >= 0 && s < d.n_seqs, "sequence out of the page table", n, s, d.n_seqs);
        TANDEM_ASSERT(pos >= 0 && pos / d.page_size < d.pages_per_seq,
                      "position past the page table", n, pos, d.page_size, d.pages_per_seq);
        for (int64_t i = reads_context ? 0 : pos / d.page_size; i <= pos / d.page_size; ++i) {
            const int32_t page = table[s * d.pages_per_seq + i];
            TANDEM_ASSERT(page >= 0 && page < d.n_pages, "page id out of range", n, s, i, page,
                          d.n_pages);
        }
    }
    return d;
}

}  // namespace

PagedDims paged_kv_write(const Tensor& k_pages, const Tensor& v_pages, const Tensor& qkv,
                         const Tensor& page_table, const Tensor& seq_index,
                         const Tensor& positions, int64_t H, int64_t Hkv) {
    return paged(k_pages, v_pages, qkv, page_table, seq_index, positions, H, Hkv, false);
}

PagedDims paged_attention_forward(const Tensor& out, const Tensor& qkv, const Tensor& k_pages,
                                  const Tensor& v_pages, const Tensor& page_table,
                                  const Tensor& seq_index, const Tensor& positions, int64_t H,
                                  int64_t Hkv) {
    const PagedDims d =
        paged(k_pages, v_pages, qkv, page_table, seq_index, positions, H, Hkv, true);
    expect(out, qkv.dtype, {d.N, H * d.D});
    return d;
}

void cross_entropy_forward(const Tensor& losses, const Tensor& lse, const Tensor& logits,
                           const Tensor& targets) {
    TANDEM_ASSERT(logits.ndim() >= 1 && is_float(logits.dtype), logits.str());
    const int64_t N = logits.rows();
    expect_rows(losses, stats_dtype(logits.dtype), N);
    expect_rows(lse, stats_dtype(logits.dtype), N);
    expect_rows(targets, DType::I32, N);
}

void cross_entropy_backward(const Tensor& dlogits, const Tensor& logits, const Tensor& lse,
                            const Tensor& targets, const Tensor& weights) {
    cross_entropy_forward(lse, lse, logits, targets);
    expect(dlogits, logits.dtype, logits.shape);
    if (!weights.empty()) expect_rows(weights, stats_dtype(logits.dtype), logits.rows());
}

void adamw(const Tensor& param, const Tensor& grad, const Tensor& m, const Tensor& v,
           const AdamWParams& hp) {
    TANDEM_ASSERT(hp.step >= 1, "AdamW steps count from 1", hp.step);
    TANDEM_ASSERT(param.ndim() == 1 && is_float(param.dtype), param.str());
    expect(grad, param.dtype, param.shape);
    expect(m, stats_dtype(param.dtype), param.shape);
    expect(v, stats_dtype(param.dtype), param.shape);
}

}  // namespace tandem::backend::checks

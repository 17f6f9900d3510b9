// The kernel interface: everything a model needs from a device, and nothing about models.
// Every backend implements all of it (reference/ defines correct, cpu/ is fast on the host,
// cuda/ runs on NVIDIA GPUs); tests/backend checks each one against reference/.
//
// Conventions for every kernel:
//  - Arguments are outputs first, then inputs, then scalars. Shapes use B batch, T positions,
//    C width, H query heads, Hkv key/value heads, D head dim, F ffn width, V vocab, N rows.
//  - Activations and weights share one dtype, the compute dtype: f32 (all backends), f64
//    (reference only: gradient checks) and later bf16 (cuda). Saved statistics (mean, rstd,
//    lse, losses) are f32, or f64 when the compute dtype is f64. Token ids are i32.
//  - Tensors are contiguous. A parameter gradient (dweight, dbias, dwte, ...) is accumulated
//    (+=) so that micro-batches add up; an input gradient is overwritten, except where a
//    kernel says `dx +=` (norms feed the residual stream, whose gradient is a running sum).
//  - Launchers validate shapes and dtypes once (TANDEM_ASSERT: callers are tandem code) and
//    kernels never throw.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include "backend/rope_params.h"
#include "core/tensor.h"

namespace tandem::backend {

struct AdamWParams {
    float lr = 1e-3f;
    float beta1 = 0.9f;
    float beta2 = 0.999f;
    float eps = 1e-8f;
    float weight_decay = 0.0f;
    int64_t step = 1;  // 1-based: the bias corrections use beta^step
    // The gradient enters as grad * grad_scale (in f32): clipping's coefficient, applied in the
    // update's own pass instead of a pass of its own over every gradient.
    float grad_scale = 1.0f;
};

class Backend {
public:
    virtual ~Backend() = default;

    virtual std::string_view name() const = 0;  // "reference", "cpu", "cuda"
    virtual Device device() const = 0;
    virtual bool supports(DType compute_dtype) const = 0;

    // ---- memory ------------------------------------------------------------------------
    // alloc returns memory aligned to 64 bytes and throws Error when the device is full.
    virtual void* alloc(size_t bytes) = 0;
    virtual void free(void* ptr) = 0;
    virtual void copy_to_device(void* dst, const void* host_src, size_t bytes) = 0;
    virtual void copy_to_host(void* host_dst, const void* src, size_t bytes) = 0;
    virtual void copy(void* dst, const void* src, size_t bytes) = 0;  // device to device
    virtual void fill_zero(Tensor x) = 0;
    // Waits until every kernel launched so far has finished (no-op on the host backends).
    virtual void synchronize() {}

    // ---- embeddings ----------------------------------------------------------------------
    // out[b, t, :] = wte[tokens[b, t], :] + wpe[pos_offset + t, :]
    // out [B, T, C], tokens i32 [B, T], wte [V, C], wpe [T_max, C] or empty (no learned
    // positions). Token ids are in [0, V) (checked where tokens enter tandem). For inference the
    // tables may be in a storage dtype (f16, bf16, Q8_0, Q4_0) with an f32 out: rows widened.
    virtual void embedding_forward(Tensor out, Tensor tokens, Tensor wte, Tensor wpe,
                                   int64_t pos_offset) = 0;
    // dwte[tokens[b, t], :] += dout[b, t, :]; dwpe[t, :] += sum_b dout[b, t, :] (if not empty).
    virtual void embedding_backward(Tensor dwte, Tensor dwpe, Tensor dout, Tensor tokens) = 0;

    // ---- normalisation --------------------------------------------------------------------
    // y = (x - mean) * rstd * weight + bias, rstd = 1 / sqrt(var + eps), biased variance.
    // y, x [N, C]; mean, rstd [N] (saved for backward); weight, bias [C].
    virtual void layer_norm_forward(Tensor y, Tensor mean, Tensor rstd, Tensor x, Tensor weight,
                                    Tensor bias, float eps) = 0;
    // dx += d/dx; dweight += sum_n dy * xhat; dbias += sum_n dy.
    virtual void layer_norm_backward(Tensor dx, Tensor dweight, Tensor dbias, Tensor dy, Tensor x,
                                     Tensor weight, Tensor mean, Tensor rstd) = 0;

    // y = x * rstd * weight, rstd = 1 / sqrt(mean(x^2) + eps). y, x [N, C]; rstd [N]; weight [C].
    virtual void rms_norm_forward(Tensor y, Tensor rstd, Tensor x, Tensor weight, float eps) = 0;
    // dx += d/dx; dweight += sum_n dy * x * rstd.
    virtual void rms_norm_backward(Tensor dx, Tensor dweight, Tensor dy, Tensor x, Tensor weight,
                                   Tensor rstd) = 0;

    // ---- matrix products ------------------------------------------------------------------
    // out = op(a) @ op(b) (+ bias), or out += ... when accumulate. op transposes when asked.
    // 2-D: out [M, N], op(a) [M, K], op(b) [K, N], bias [N] or empty.
    // 3-D (batched, no bias): out [S, M, N], op(a) [S, M, K], op(b) [S, K, N].
    virtual void matmul(Tensor out, Tensor a, Tensor b, Tensor bias, bool trans_a, bool trans_b,
                        bool accumulate) = 0;
    // dbias[n] += sum_m dout[m, n]. dbias [N], dout [M, N].
    virtual void bias_backward(Tensor dbias, Tensor dout) = 0;

    // A product with a weight in its storage dtype (f32, f16, bf16, Q8_0, Q4_0: no dequantised
    // copy), for inference: out = x W^T + bias, or out = x W + bias when w_is_in_out.
    // out [N, O] and x [N, K] in the compute dtype (any leading dims, flattened to rows); w [O, K]
    // (nn.Linear), or [K, O] (GPT-2's Conv1D) when w_is_in_out; bias [O] in the compute dtype or
    // empty. A block dtype needs rows of whole blocks: K % 32 == 0 ([O, K]) or O % 32 == 0
    // ([K, O]) (asserted). Overwrites out. A backend may round x on the way (the cpu backend
    // quantises it to 8 bits per block of 32 against Q8_0/Q4_0 weights, to bf16 against bf16
    // ones), so results are as close to exact as the weights' own rounding, not bit for bit.
    virtual void matmul_weights(Tensor out, Tensor x, Tensor w, Tensor bias,
                                bool w_is_in_out) = 0;

    // ---- activations ----------------------------------------------------------------------
    // GELU, tanh approximation: y = x/2 * (1 + tanh(sqrt(2/pi) * (x + 0.044715 x^3))).
    // y, x any shape; dx may alias dy.
    virtual void gelu_forward(Tensor y, Tensor x) = 0;
    virtual void gelu_backward(Tensor dx, Tensor dy, Tensor x) = 0;

    // SwiGLU: y = silu(gate) * up, silu(g) = g / (1 + exp(-g)).
    // y [N, F]; gate_up [N, 2F] holds gate in columns [0, F) and up in [F, 2F) (the output of
    // one product with gate_proj and up_proj stacked). dgate_up [N, 2F].
    virtual void swiglu_forward(Tensor y, Tensor gate_up) = 0;
    virtual void swiglu_backward(Tensor dgate_up, Tensor dy, Tensor gate_up) = 0;

    // ---- attention ------------------------------------------------------------------------
    // Attention works on the packed output of the QKV product: qkv [B, T, (H + 2 Hkv) * D],
    // per position H query heads, then Hkv key heads, then Hkv value heads, each D wide.
    // Query head h reads key/value head h / (H / Hkv) (grouped-query attention).

    // Per-head RMSNorm of the query and key heads (Qwen3), in place of a copy:
    // y = qkv with every q head normalised with q_weight [D] and every k head with k_weight [D];
    // v heads are copied. rstd [B, T, H + Hkv] (q heads first).
    virtual void qk_norm_forward(Tensor y, Tensor rstd, Tensor qkv, Tensor q_weight,
                                 Tensor k_weight, int64_t H, int64_t Hkv, float eps) = 0;
    // dqkv = d/dqkv (overwritten; v part copied from dy); dq_weight, dk_weight +=.
    virtual void qk_norm_backward(Tensor dqkv, Tensor dq_weight, Tensor dk_weight, Tensor dy,
                                  Tensor qkv, Tensor q_weight, Tensor k_weight, Tensor rstd,
                                  int64_t H, int64_t Hkv) = 0;

    // Rotary position embedding, in place on the q and k heads of qkv, in the "rotate half"
    // layout of Hugging Face Llama/Qwen: for i < D/2, with
    // angle = (pos_offset + t) * rope.inv_freq(i, D) (theta^(-2i/D), Llama-3-rescaled when
    // rope.scaling is on; see rope_params.h), (x[i], x[i + D/2]) ->
    // (x[i] cos - x[i + D/2] sin, x[i + D/2] cos + x[i] sin). D is even.
    virtual void rope_forward(Tensor qkv, int64_t H, int64_t Hkv, const RopeParams& rope,
                              int64_t pos_offset) = 0;
    // The transpose of the rotation (rotation by -angle), in place on dqkv.
    virtual void rope_backward(Tensor dqkv, int64_t H, int64_t Hkv, const RopeParams& rope,
                               int64_t pos_offset) = 0;

    // Causal self-attention: out[b, t, h] = sum_{s <= t} softmax_s(q.k_s / sqrt(D)) v_s.
    // out [B, T, H * D]; lse [B, H, T] saves log-sum-exp of the scaled scores for backward.
    virtual void attention_forward(Tensor out, Tensor lse, Tensor qkv, int64_t H,
                                   int64_t Hkv) = 0;
    // dqkv [B, T, (H + 2 Hkv) * D] is overwritten with the gradient of q, k and v.
    virtual void attention_backward(Tensor dqkv, Tensor dout, Tensor qkv, Tensor out, Tensor lse,
                                    int64_t H, int64_t Hkv) = 0;

    // ---- inference: rows at their own positions, and a paged key/value cache ---------------
    // A step's N rows are tokens of any sequences, flattened: row n is at absolute position
    // positions[n] (i32 [N]) of sequence seq_index[n] (i32 [N]). Activations are in the compute
    // dtype; qkv [N, (H + 2 Hkv) * D] is the packed layout above.

    // out[n, :] = wte[tokens[n], :] + wpe[positions[n], :]. out [N, C]; tokens, positions i32
    // [N]; wte [V, C] and wpe [T_max, C] (or empty) in any storage dtype (f32, f64, bf16, f16,
    // q8_0, q4_0: tied embeddings may be quantized), converted to out's dtype.
    virtual void embedding_at_forward(Tensor out, Tensor tokens, Tensor positions, Tensor wte,
                                      Tensor wpe) = 0;
    // rope_forward with row n at angle positions[n] * inv_freq(i, D), in place on qkv [N, W].
    virtual void rope_at_forward(Tensor qkv, Tensor positions, int64_t H, int64_t Hkv,
                                 const RopeParams& rope) = 0;

    // The cache of one layer is k_pages, v_pages [P, page_size, Hkv * D] in the cache dtype
    // (f32 or f16; f64 too with f64 activations); kernels convert. page_table i32 [S,
    // pages_per_seq] maps position p of sequence s to slot p % page_size of page
    // page_table[s, p / page_size]. Every page a row reads or writes is in [0, P).
    // Writes the k and v heads of row n of qkv to position positions[n] of its sequence.
    virtual void paged_kv_write(Tensor k_pages, Tensor v_pages, Tensor qkv, Tensor page_table,
                                Tensor seq_index, Tensor positions, int64_t H, int64_t Hkv) = 0;
    // out [N, H * D]: query head h of row n attends causally to positions [0, positions[n]] of
    // its sequence through the page table (paged_kv_write has filled them, its own included):
    // out[n, h] = sum_p softmax_p(q . k_p / sqrt(D)) v_p, with kv head h / (H / Hkv).
    virtual void paged_attention_forward(Tensor out, Tensor qkv, Tensor k_pages, Tensor v_pages,
                                         Tensor page_table, Tensor seq_index, Tensor positions,
                                         int64_t H, int64_t Hkv) = 0;

    // The inference kernels above that this backend does not implement yet (it aborts if one is
    // called): an engine asks before it runs and refuses such a backend with an Error. Empty on a
    // backend that implements them all.
    virtual std::vector<std::string_view> missing_kernels() const { return {}; }

    // ---- residual stream ------------------------------------------------------------------
    // out = a + b, all the same shape; out may alias a or b.
    virtual void add(Tensor out, Tensor a, Tensor b) = 0;

    // ---- loss -----------------------------------------------------------------------------
    // losses[n] = logsumexp(logits[n, :]) - logits[n, targets[n]], and 0 where targets[n] ==
    // ignore_index. losses, lse [N]; logits [N, V]; targets i32 [N] in [0, V) or ignore_index.
    virtual void cross_entropy_forward(Tensor losses, Tensor lse, Tensor logits, Tensor targets,
                                       int32_t ignore_index) = 0;
    // dlogits[n, :] = dloss * weights[n] * (softmax(logits[n, :]) - onehot(targets[n])), and 0
    // on ignored rows and rows of weight 0 (whatever their logits). weights [N] in the dtype of
    // lse (per-token loss weights, or a 0/1 mask), or empty for weight 1 everywhere. dlogits may
    // alias logits (the logits are dead after the loss).
    virtual void cross_entropy_backward(Tensor dlogits, Tensor logits, Tensor lse, Tensor targets,
                                        Tensor weights, float dloss, int32_t ignore_index) = 0;

    // ---- reductions and the optimizer -----------------------------------------------------
    // Sum of x (any shape), and sum of x^2 (the squared global norm when x is the flat gradient
    // buffer), accumulated in double and returned to the host.
    virtual double sum(Tensor x) = 0;
    virtual double sum_squares(Tensor x) = 0;
    // x *= s in place (gradient clipping, loss scaling).
    virtual void scale(Tensor x, float s) = 0;

    // AdamW with decoupled weight decay, in PyTorch's order of operations:
    // param *= 1 - lr * weight_decay; m = b1 m + (1 - b1) g; v = b2 v + (1 - b2) g^2;
    // param -= (lr / (1 - b1^step)) * m / (sqrt(v) / sqrt(1 - b2^step) + eps).
    // param, grad, m, v: 1-D, same length; m and v are f32 (f64 with an f64 param).
    virtual void adamw_update(Tensor param, Tensor grad, Tensor m, Tensor v,
                              const AdamWParams& hp) = 0;
};

// The dtype of saved statistics for a compute dtype: f64 for f64, f32 otherwise.
inline DType stats_dtype(DType compute) { return compute == DType::F64 ? DType::F64 : DType::F32; }

}  // namespace tandem::backend

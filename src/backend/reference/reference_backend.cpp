// The reference backend's launchers: check shapes and dtypes (backend/checks.h), then dispatch
// once on the compute dtype to the templates of kernels.h. Memory comes from HostMemoryBackend.
#include "backend/reference/reference_backend.h"

#include "backend/checks.h"
#include "backend/host_memory.h"
#include "backend/reference/kernels.h"

namespace tandem::backend {

namespace {

namespace ref = reference;

// Calls fn with a value of the element type of `dtype` (float or double).
template <typename Fn>
void on_dtype(DType dtype, Fn&& fn) {
    switch (dtype) {
        case DType::F32:
            fn(float{});
            return;
        case DType::F64:
            fn(double{});
            return;
        default:
            TANDEM_ASSERT(false, "reference backend: unsupported dtype", dtype_name(dtype));
    }
}

#define TANDEM_DISPATCH(dtype, call) \
    on_dtype(dtype, [&](auto tag) {  \
        using Real = decltype(tag);  \
        call;                        \
    })

class ReferenceBackend final : public HostMemoryBackend {
   public:
    std::string_view name() const override { return "reference"; }
    bool supports(DType dtype) const override { return dtype == DType::F32 || dtype == DType::F64; }

    void embedding_forward(Tensor out, Tensor tokens, Tensor wte, Tensor wpe,
                           int64_t pos_offset) override {
        checks::embedding_forward(out, tokens, wte, wpe, pos_offset);
        TANDEM_DISPATCH(out.dtype, ref::embedding_forward<Real>(out, tokens, wte, wpe, pos_offset));
    }
    void embedding_backward(Tensor dwte, Tensor dwpe, Tensor dout, Tensor tokens) override {
        checks::embedding_backward(dwte, dwpe, dout, tokens);
        TANDEM_DISPATCH(dout.dtype, ref::embedding_backward<Real>(dwte, dwpe, dout, tokens));
    }

    void layer_norm_forward(Tensor y, Tensor mean, Tensor rstd, Tensor x, Tensor weight,
                            Tensor bias, float eps) override {
        checks::layer_norm_forward(y, mean, rstd, x, weight, bias);
        TANDEM_DISPATCH(x.dtype,
                        ref::layer_norm_forward<Real>(y, mean, rstd, x, weight, bias, eps));
    }
    void layer_norm_backward(Tensor dx, Tensor dweight, Tensor dbias, Tensor dy, Tensor x,
                             Tensor weight, Tensor mean, Tensor rstd) override {
        checks::layer_norm_backward(dx, dweight, dbias, dy, x, weight, mean, rstd);
        TANDEM_DISPATCH(
            x.dtype, ref::layer_norm_backward<Real>(dx, dweight, dbias, dy, x, weight, mean, rstd));
    }
    void rms_norm_forward(Tensor y, Tensor rstd, Tensor x, Tensor weight, float eps) override {
        checks::rms_norm_forward(y, rstd, x, weight);
        TANDEM_DISPATCH(x.dtype, ref::rms_norm_forward<Real>(y, rstd, x, weight, eps));
    }
    void rms_norm_backward(Tensor dx, Tensor dweight, Tensor dy, Tensor x, Tensor weight,
                           Tensor rstd) override {
        checks::rms_norm_backward(dx, dweight, dy, x, weight, rstd);
        TANDEM_DISPATCH(x.dtype, ref::rms_norm_backward<Real>(dx, dweight, dy, x, weight, rstd));
    }

    void matmul(Tensor out, Tensor a, Tensor b, Tensor bias, bool trans_a, bool trans_b,
                bool accumulate) override {
        checks::matmul(out, a, b, bias, trans_a, trans_b);
        TANDEM_DISPATCH(out.dtype,
                        ref::matmul<Real>(out, a, b, bias, trans_a, trans_b, accumulate));
    }
    void bias_backward(Tensor dbias, Tensor dout) override {
        checks::bias_backward(dbias, dout);
        TANDEM_DISPATCH(dout.dtype, ref::bias_backward<Real>(dbias, dout));
    }
    void matmul_weights(Tensor out, Tensor x, Tensor w, Tensor bias, bool w_is_in_out) override {
        checks::matmul_weights(out, x, w, bias, w_is_in_out);
        TANDEM_DISPATCH(out.dtype, ref::matmul_weights<Real>(out, x, w, bias, w_is_in_out));
    }

    void gelu_forward(Tensor y, Tensor x) override {
        checks::same_shape(y, x);
        TANDEM_DISPATCH(x.dtype, ref::gelu_forward<Real>(y, x));
    }
    void gelu_backward(Tensor dx, Tensor dy, Tensor x) override {
        checks::same_shape(dx, x);
        checks::same_shape(dy, x);
        TANDEM_DISPATCH(x.dtype, ref::gelu_backward<Real>(dx, dy, x));
    }
    void swiglu_forward(Tensor y, Tensor gate_up) override {
        checks::swiglu(y, gate_up);
        TANDEM_DISPATCH(y.dtype, ref::swiglu_forward<Real>(y, gate_up));
    }
    void swiglu_backward(Tensor dgate_up, Tensor dy, Tensor gate_up) override {
        checks::swiglu(dy, gate_up);
        checks::same_shape(dgate_up, gate_up);
        TANDEM_DISPATCH(dy.dtype, ref::swiglu_backward<Real>(dgate_up, dy, gate_up));
    }

    void qk_norm_forward(Tensor y, Tensor rstd, Tensor qkv, Tensor q_weight, Tensor k_weight,
                         int64_t H, int64_t Hkv, float eps) override {
        checks::qk_norm(y, rstd, qkv, q_weight, k_weight, H, Hkv);
        TANDEM_DISPATCH(qkv.dtype,
                        ref::qk_norm_forward<Real>(y, rstd, qkv, q_weight, k_weight, H, Hkv, eps));
    }
    void qk_norm_backward(Tensor dqkv, Tensor dq_weight, Tensor dk_weight, Tensor dy, Tensor qkv,
                          Tensor q_weight, Tensor k_weight, Tensor rstd, int64_t H,
                          int64_t Hkv) override {
        checks::qk_norm(dy, rstd, qkv, q_weight, k_weight, H, Hkv);
        checks::qk_norm(dqkv, rstd, qkv, dq_weight, dk_weight, H, Hkv);
        TANDEM_DISPATCH(qkv.dtype, ref::qk_norm_backward<Real>(dqkv, dq_weight, dk_weight, dy, qkv,
                                                               q_weight, k_weight, rstd, H, Hkv));
    }

    void rope_forward(Tensor qkv, int64_t H, int64_t Hkv, const RopeParams& rope,
                      int64_t pos_offset) override {
        TANDEM_ASSERT(checks::qkv_layout(qkv, H, Hkv).D % 2 == 0, qkv.str(), H, Hkv);
        TANDEM_DISPATCH(qkv.dtype, ref::rope<Real>(qkv, H, Hkv, rope, pos_offset, false));
    }
    void rope_backward(Tensor dqkv, int64_t H, int64_t Hkv, const RopeParams& rope,
                       int64_t pos_offset) override {
        TANDEM_ASSERT(checks::qkv_layout(dqkv, H, Hkv).D % 2 == 0, dqkv.str(), H, Hkv);
        TANDEM_DISPATCH(dqkv.dtype, ref::rope<Real>(dqkv, H, Hkv, rope, pos_offset, true));
    }

    void attention_forward(Tensor out, Tensor lse, Tensor qkv, int64_t H, int64_t Hkv) override {
        checks::attention_forward(out, lse, qkv, H, Hkv);
        TANDEM_DISPATCH(qkv.dtype, ref::attention_forward<Real>(out, lse, qkv, H, Hkv));
    }
    void attention_backward(Tensor dqkv, Tensor dout, Tensor qkv, Tensor out, Tensor lse, int64_t H,
                            int64_t Hkv) override {
        checks::attention_backward(dqkv, dout, qkv, out, lse, H, Hkv);
        TANDEM_DISPATCH(qkv.dtype,
                        ref::attention_backward<Real>(dqkv, dout, qkv, out, lse, H, Hkv));
    }

    void embedding_at_forward(Tensor out, Tensor tokens, Tensor positions, Tensor wte,
                              Tensor wpe) override {
        checks::embedding_at_forward(out, tokens, positions, wte, wpe);
        TANDEM_DISPATCH(out.dtype,
                        ref::embedding_at_forward<Real>(out, tokens, positions, wte, wpe));
    }
    void rope_at_forward(Tensor qkv, Tensor positions, int64_t H, int64_t Hkv,
                         const RopeParams& rope) override {
        checks::rope_at(qkv, positions, H, Hkv);
        TANDEM_DISPATCH(qkv.dtype, ref::rope_at<Real>(qkv, positions, H, Hkv, rope));
    }
    void paged_kv_write(Tensor k_pages, Tensor v_pages, Tensor qkv, Tensor page_table,
                        Tensor seq_index, Tensor positions, int64_t H, int64_t Hkv) override {
        checks::paged_kv_write(k_pages, v_pages, qkv, page_table, seq_index, positions, H, Hkv);
        TANDEM_DISPATCH(qkv.dtype, ref::paged_kv_write<Real>(k_pages, v_pages, qkv, page_table,
                                                             seq_index, positions, H, Hkv));
    }
    void paged_attention_forward(Tensor out, Tensor qkv, Tensor k_pages, Tensor v_pages,
                                 Tensor page_table, Tensor seq_index, Tensor positions, int64_t H,
                                 int64_t Hkv) override {
        checks::paged_attention_forward(out, qkv, k_pages, v_pages, page_table, seq_index,
                                        positions, H, Hkv);
        TANDEM_DISPATCH(qkv.dtype,
                        ref::paged_attention_forward<Real>(out, qkv, k_pages, v_pages, page_table,
                                                           seq_index, positions, H, Hkv));
    }

    void add(Tensor out, Tensor a, Tensor b) override {
        checks::same_shape(out, a);
        checks::same_shape(b, a);
        TANDEM_DISPATCH(a.dtype, ref::add<Real>(out, a, b));
    }

    void cross_entropy_forward(Tensor losses, Tensor lse, Tensor logits, Tensor targets,
                               int32_t ignore_index) override {
        checks::cross_entropy_forward(losses, lse, logits, targets);
        TANDEM_DISPATCH(logits.dtype, ref::cross_entropy_forward<Real>(losses, lse, logits, targets,
                                                                       ignore_index));
    }
    void cross_entropy_backward(Tensor dlogits, Tensor logits, Tensor lse, Tensor targets,
                                Tensor weights, float dloss, int32_t ignore_index) override {
        checks::cross_entropy_backward(dlogits, logits, lse, targets, weights);
        TANDEM_DISPATCH(logits.dtype,
                        ref::cross_entropy_backward<Real>(dlogits, logits, lse, targets, weights,
                                                          dloss, ignore_index));
    }

    double sum(Tensor x) override {
        double result = 0;
        TANDEM_DISPATCH(x.dtype, result = ref::sum<Real>(x));
        return result;
    }
    double sum_squares(Tensor x) override {
        double result = 0;
        TANDEM_DISPATCH(x.dtype, result = ref::sum_squares<Real>(x));
        return result;
    }
    void scale(Tensor x, float s) override { TANDEM_DISPATCH(x.dtype, ref::scale<Real>(x, s)); }

    void adamw_update(Tensor param, Tensor grad, Tensor m, Tensor v,
                      const AdamWParams& hp) override {
        checks::adamw(param, grad, m, v, hp);
        TANDEM_DISPATCH(param.dtype, ref::adamw_update<Real>(param, grad, m, v, hp));
    }
};

#undef TANDEM_DISPATCH

}  // namespace

std::unique_ptr<Backend> make_reference_backend() {
    return std::make_unique<ReferenceBackend>();
}

}  // namespace tandem::backend

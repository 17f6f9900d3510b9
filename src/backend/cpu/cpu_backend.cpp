// The cpu backend's launchers: check shapes and dtypes once (backend/checks.h), then call the
// f32 kernels of kernels.h. Memory comes from HostMemoryBackend.
#include "backend/cpu/cpu_backend.h"

#include "backend/checks.h"
#include "backend/cpu/blas.h"
#include "backend/cpu/kernels.h"
#include "backend/cpu/matmul_weights.h"
#include "backend/host_memory.h"

namespace tandem::backend {

namespace {

void expect_f32(const Tensor& t) {
    TANDEM_ASSERT(t.dtype == DType::F32, "the cpu backend computes in f32 only", t.str());
}

class CpuBackend final : public HostMemoryBackend {
   public:
    std::string_view name() const override { return "cpu"; }
    bool supports(DType dtype) const override { return dtype == DType::F32; }
    void fill_zero(Tensor x) override {
        if (x.data) cpu::fill_zero(x);
    }

    void embedding_forward(Tensor out, Tensor tokens, Tensor wte, Tensor wpe,
                           int64_t pos_offset) override {
        checks::embedding_forward(out, tokens, wte, wpe, pos_offset);
        expect_f32(out);
        cpu::embedding_forward(out, tokens, wte, wpe, pos_offset);
    }
    void embedding_backward(Tensor dwte, Tensor dwpe, Tensor dout, Tensor tokens) override {
        checks::embedding_backward(dwte, dwpe, dout, tokens);
        expect_f32(dout);
        cpu::embedding_backward(dwte, dwpe, dout, tokens);
    }

    void layer_norm_forward(Tensor y, Tensor mean, Tensor rstd, Tensor x, Tensor weight,
                            Tensor bias, float eps) override {
        checks::layer_norm_forward(y, mean, rstd, x, weight, bias);
        expect_f32(x);
        cpu::layer_norm_forward(y, mean, rstd, x, weight, bias, eps);
    }
    void layer_norm_backward(Tensor dx, Tensor dweight, Tensor dbias, Tensor dy, Tensor x,
                             Tensor weight, Tensor mean, Tensor rstd) override {
        checks::layer_norm_backward(dx, dweight, dbias, dy, x, weight, mean, rstd);
        expect_f32(x);
        cpu::layer_norm_backward(dx, dweight, dbias, dy, x, weight, mean, rstd);
    }
    void rms_norm_forward(Tensor y, Tensor rstd, Tensor x, Tensor weight, float eps) override {
        checks::rms_norm_forward(y, rstd, x, weight);
        expect_f32(x);
        cpu::rms_norm_forward(y, rstd, x, weight, eps);
    }
    void rms_norm_backward(Tensor dx, Tensor dweight, Tensor dy, Tensor x, Tensor weight,
                           Tensor rstd) override {
        checks::rms_norm_backward(dx, dweight, dy, x, weight, rstd);
        expect_f32(x);
        cpu::rms_norm_backward(dx, dweight, dy, x, weight, rstd);
    }

    void matmul(Tensor out, Tensor a, Tensor b, Tensor bias, bool trans_a, bool trans_b,
                bool accumulate) override {
        checks::matmul(out, a, b, bias, trans_a, trans_b);
        expect_f32(out);
        cpu::log_blas_choice_once();
        cpu::matmul(out, a, b, bias, trans_a, trans_b, accumulate);
    }
    void matmul_weights(Tensor out, Tensor x, Tensor w, Tensor bias, bool w_is_in_out) override {
        checks::matmul_weights(out, x, w, bias, w_is_in_out);
        expect_f32(out);
        cpu::matmul_weights(cpu::weights_isa_chosen(), out, x, w, bias, w_is_in_out);
    }
    void bias_backward(Tensor dbias, Tensor dout) override {
        checks::bias_backward(dbias, dout);
        expect_f32(dout);
        cpu::bias_backward(dbias, dout);
    }

    void gelu_forward(Tensor y, Tensor x) override {
        checks::same_shape(y, x);
        expect_f32(x);
        cpu::gelu_forward(y, x);
    }
    void gelu_backward(Tensor dx, Tensor dy, Tensor x) override {
        checks::same_shape(dx, x);
        checks::same_shape(dy, x);
        expect_f32(x);
        cpu::gelu_backward(dx, dy, x);
    }
    void swiglu_forward(Tensor y, Tensor gate_up) override {
        checks::swiglu(y, gate_up);
        expect_f32(y);
        cpu::swiglu_forward(y, gate_up);
    }
    void swiglu_backward(Tensor dgate_up, Tensor dy, Tensor gate_up) override {
        checks::swiglu(dy, gate_up);
        checks::same_shape(dgate_up, gate_up);
        expect_f32(dy);
        cpu::swiglu_backward(dgate_up, dy, gate_up);
    }

    void qk_norm_forward(Tensor y, Tensor rstd, Tensor qkv, Tensor q_weight, Tensor k_weight,
                         int64_t H, int64_t Hkv, float eps) override {
        checks::qk_norm(y, rstd, qkv, q_weight, k_weight, H, Hkv);
        expect_f32(qkv);
        cpu::qk_norm_forward(y, rstd, qkv, q_weight, k_weight, H, Hkv, eps);
    }
    void qk_norm_backward(Tensor dqkv, Tensor dq_weight, Tensor dk_weight, Tensor dy, Tensor qkv,
                          Tensor q_weight, Tensor k_weight, Tensor rstd, int64_t H,
                          int64_t Hkv) override {
        checks::qk_norm(dy, rstd, qkv, q_weight, k_weight, H, Hkv);
        checks::qk_norm(dqkv, rstd, qkv, dq_weight, dk_weight, H, Hkv);
        expect_f32(qkv);
        cpu::qk_norm_backward(dqkv, dq_weight, dk_weight, dy, qkv, q_weight, k_weight, rstd, H,
                              Hkv);
    }

    void rope_forward(Tensor qkv, int64_t H, int64_t Hkv, const RopeParams& rope,
                      int64_t pos_offset) override {
        TANDEM_ASSERT(checks::qkv_layout(qkv, H, Hkv).D % 2 == 0, qkv.str(), H, Hkv);
        expect_f32(qkv);
        cpu::rope(qkv, H, Hkv, rope, pos_offset, /*inverse=*/false);
    }
    void rope_backward(Tensor dqkv, int64_t H, int64_t Hkv, const RopeParams& rope,
                       int64_t pos_offset) override {
        TANDEM_ASSERT(checks::qkv_layout(dqkv, H, Hkv).D % 2 == 0, dqkv.str(), H, Hkv);
        expect_f32(dqkv);
        cpu::rope(dqkv, H, Hkv, rope, pos_offset, /*inverse=*/true);
    }

    void attention_forward(Tensor out, Tensor lse, Tensor qkv, int64_t H, int64_t Hkv) override {
        checks::attention_forward(out, lse, qkv, H, Hkv);
        expect_f32(qkv);
        cpu::attention_forward(out, lse, qkv, H, Hkv);
    }
    void attention_backward(Tensor dqkv, Tensor dout, Tensor qkv, Tensor out, Tensor lse, int64_t H,
                            int64_t Hkv) override {
        checks::attention_backward(dqkv, dout, qkv, out, lse, H, Hkv);
        expect_f32(qkv);
        cpu::attention_backward(dqkv, dout, qkv, out, lse, H, Hkv);
    }

    void embedding_at_forward(Tensor out, Tensor tokens, Tensor positions, Tensor wte,
                              Tensor wpe) override {
        checks::embedding_at_forward(out, tokens, positions, wte, wpe);
        expect_f32(out);
        cpu::embedding_at_forward(out, tokens, positions, wte, wpe);
    }
    void rope_at_forward(Tensor qkv, Tensor positions, int64_t H, int64_t Hkv,
                         const RopeParams& rope) override {
        checks::rope_at(qkv, positions, H, Hkv);
        expect_f32(qkv);
        cpu::rope_at(qkv, positions, H, Hkv, rope);
    }
    void paged_kv_write(Tensor k_pages, Tensor v_pages, Tensor qkv, Tensor page_table,
                        Tensor seq_index, Tensor positions, int64_t H, int64_t Hkv) override {
        checks::paged_kv_write(k_pages, v_pages, qkv, page_table, seq_index, positions, H, Hkv);
        expect_f32(qkv);
        cpu::paged_kv_write(k_pages, v_pages, qkv, page_table, seq_index, positions, H, Hkv);
    }
    void paged_attention_forward(Tensor out, Tensor qkv, Tensor k_pages, Tensor v_pages,
                                 Tensor page_table, Tensor seq_index, Tensor positions, int64_t H,
                                 int64_t Hkv) override {
        checks::paged_attention_forward(out, qkv, k_pages, v_pages, page_table, seq_index,
                                        positions, H, Hkv);
        expect_f32(qkv);
        cpu::paged_attention_forward(out, qkv, k_pages, v_pages, page_table, seq_index,
                                     positions, H, Hkv);
    }

    void add(Tensor out, Tensor a, Tensor b) override {
        checks::same_shape(out, a);
        checks::same_shape(b, a);
        expect_f32(a);
        cpu::add(out, a, b);
    }

    void cross_entropy_forward(Tensor losses, Tensor lse, Tensor logits, Tensor targets,
                               int32_t ignore_index) override {
        checks::cross_entropy_forward(losses, lse, logits, targets);
        expect_f32(logits);
        cpu::cross_entropy_forward(losses, lse, logits, targets, ignore_index);
    }
    void cross_entropy_backward(Tensor dlogits, Tensor logits, Tensor lse, Tensor targets,
                                Tensor weights, float dloss, int32_t ignore_index) override {
        checks::cross_entropy_backward(dlogits, logits, lse, targets, weights);
        expect_f32(logits);
        cpu::cross_entropy_backward(dlogits, logits, lse, targets, weights, dloss, ignore_index);
    }

    double sum(Tensor x) override {
        expect_f32(x);
        return cpu::sum(x);
    }
    double sum_squares(Tensor x) override {
        expect_f32(x);
        return cpu::sum_squares(x);
    }
    void scale(Tensor x, float s) override {
        expect_f32(x);
        cpu::scale(x, s);
    }

    void adamw_update(Tensor param, Tensor grad, Tensor m, Tensor v,
                      const AdamWParams& hp) override {
        checks::adamw(param, grad, m, v, hp);
        expect_f32(param);
        cpu::adamw_update(param, grad, m, v, hp);
    }
};

}  // namespace

std::unique_ptr<Backend> make_cpu_backend() {
    // Load OpenBLAS here, at the boundary: a missing library is an Error when the backend is
    // chosen, never inside a kernel. The chosen core is logged at the first product.
    cpu::blas();
    return std::make_unique<CpuBackend>();
}

}  // namespace tandem::backend

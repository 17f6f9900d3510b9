// A Backend that forwards every call to another and times each kernel (synchronising after it),
// keyed by the kernel's name and, for products, their shape: "where the time goes" per kernel
// for train_step_bench --profile. Memory calls are forwarded untimed, except fill_zero.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include "backend/backend.h"

namespace tandem::bench {

class ProfilingBackend final : public backend::Backend {
   public:
    explicit ProfilingBackend(backend::Backend& inner) : be_(inner) {}

    void reset() { totals_.clear(); }
    // Prints the kernels by total time, per step, over `steps` steps.
    void print(int steps) const {
        std::vector<std::pair<double, std::string>> rows;
        double all = 0;
        for (const auto& [key, t] : totals_) {
            rows.emplace_back(t.seconds, key);
            all += t.seconds;
        }
        std::sort(rows.rbegin(), rows.rend());
        std::printf("# per-kernel time per step (%.3f s in kernels):\n", all / steps);
        for (const auto& [s, key] : rows)
            std::printf("#   %7.1f ms %5.1f%%  %4lld calls  %s\n", 1e3 * s / steps, 100 * s / all,
                        static_cast<long long>(totals_.at(key).calls / steps), key.c_str());
    }

    std::string_view name() const override { return be_.name(); }
    Device device() const override { return be_.device(); }
    bool supports(DType d) const override { return be_.supports(d); }
    void* alloc(size_t n) override { return be_.alloc(n); }
    void free(void* p) override { be_.free(p); }
    void copy_to_device(void* d, const void* s, size_t n) override { be_.copy_to_device(d, s, n); }
    void copy_to_host(void* d, const void* s, size_t n) override { be_.copy_to_host(d, s, n); }
    void copy(void* d, const void* s, size_t n) override { be_.copy(d, s, n); }
    void synchronize() override { be_.synchronize(); }
    void fill_zero(Tensor x) override {
        timed("fill_zero", [&] { be_.fill_zero(x); });
    }

    void embedding_forward(Tensor o, Tensor t, Tensor e, Tensor p, int64_t off) override {
        timed("embedding_forward", [&] { be_.embedding_forward(o, t, e, p, off); });
    }
    void embedding_backward(Tensor de, Tensor dp, Tensor d, Tensor t) override {
        timed("embedding_backward", [&] { be_.embedding_backward(de, dp, d, t); });
    }
    void layer_norm_forward(Tensor y, Tensor m, Tensor r, Tensor x, Tensor w, Tensor b,
                            float eps) override {
        timed("layer_norm_forward", [&] { be_.layer_norm_forward(y, m, r, x, w, b, eps); });
    }
    void layer_norm_backward(Tensor dx, Tensor dw, Tensor db, Tensor dy, Tensor x, Tensor w,
                             Tensor m, Tensor r) override {
        timed("layer_norm_backward",
              [&] { be_.layer_norm_backward(dx, dw, db, dy, x, w, m, r); });
    }
    void rms_norm_forward(Tensor y, Tensor r, Tensor x, Tensor w, float eps) override {
        timed("rms_norm_forward", [&] { be_.rms_norm_forward(y, r, x, w, eps); });
    }
    void rms_norm_backward(Tensor dx, Tensor dw, Tensor dy, Tensor x, Tensor w,
                           Tensor r) override {
        timed("rms_norm_backward", [&] { be_.rms_norm_backward(dx, dw, dy, x, w, r); });
    }
    void matmul_weights(Tensor o, Tensor x, Tensor w, Tensor bias, bool in_out) override {
        timed("matmul_weights " + std::string(dtype_name(w.dtype)) + " " + w.shape.str(),
              [&] { be_.matmul_weights(o, x, w, bias, in_out); });
    }
    void matmul(Tensor o, Tensor a, Tensor b, Tensor bias, bool ta, bool tb, bool acc) override {
        // [M x K] x [K x N] as computed, with which operand is read transposed.
        const int64_t M = o.size(-2), N = o.size(-1), K = ta ? a.size(-2) : a.size(-1);
        char key[128];
        std::snprintf(key, sizeof key, "matmul %s[%lld x %lld] x [%lld x %lld]%s%s%s%s",
                      o.ndim() == 3 ? "batched " : "", static_cast<long long>(M),
                      static_cast<long long>(K), static_cast<long long>(K),
                      static_cast<long long>(N), ta ? " A^T" : "", tb ? " B^T" : "",
                      bias.empty() ? "" : " +bias", acc ? " +=" : "");
        timed(key, [&] { be_.matmul(o, a, b, bias, ta, tb, acc); });
    }
    void bias_backward(Tensor db, Tensor d) override {
        timed("bias_backward", [&] { be_.bias_backward(db, d); });
    }
    void gelu_forward(Tensor y, Tensor x) override {
        timed("gelu_forward", [&] { be_.gelu_forward(y, x); });
    }
    void gelu_backward(Tensor dx, Tensor dy, Tensor x) override {
        timed("gelu_backward", [&] { be_.gelu_backward(dx, dy, x); });
    }
    void swiglu_forward(Tensor y, Tensor g) override {
        timed("swiglu_forward", [&] { be_.swiglu_forward(y, g); });
    }
    void swiglu_backward(Tensor dg, Tensor dy, Tensor g) override {
        timed("swiglu_backward", [&] { be_.swiglu_backward(dg, dy, g); });
    }
    void qk_norm_forward(Tensor y, Tensor r, Tensor qkv, Tensor qw, Tensor kw, int64_t H,
                         int64_t Hkv, float eps) override {
        timed("qk_norm_forward", [&] { be_.qk_norm_forward(y, r, qkv, qw, kw, H, Hkv, eps); });
    }
    void qk_norm_backward(Tensor dqkv, Tensor dqw, Tensor dkw, Tensor dy, Tensor qkv, Tensor qw,
                          Tensor kw, Tensor r, int64_t H, int64_t Hkv) override {
        timed("qk_norm_backward",
              [&] { be_.qk_norm_backward(dqkv, dqw, dkw, dy, qkv, qw, kw, r, H, Hkv); });
    }
    void rope_forward(Tensor qkv, int64_t H, int64_t Hkv, const backend::RopeParams& rope,
                      int64_t off) override {
        timed("rope_forward", [&] { be_.rope_forward(qkv, H, Hkv, rope, off); });
    }
    void rope_backward(Tensor dqkv, int64_t H, int64_t Hkv, const backend::RopeParams& rope,
                       int64_t off) override {
        timed("rope_backward", [&] { be_.rope_backward(dqkv, H, Hkv, rope, off); });
    }
    void attention_forward(Tensor o, Tensor lse, Tensor qkv, int64_t H, int64_t Hkv) override {
        timed("attention_forward", [&] { be_.attention_forward(o, lse, qkv, H, Hkv); });
    }
    void attention_backward(Tensor dqkv, Tensor d, Tensor qkv, Tensor o, Tensor lse, int64_t H,
                            int64_t Hkv) override {
        timed("attention_backward",
              [&] { be_.attention_backward(dqkv, d, qkv, o, lse, H, Hkv); });
    }
    void embedding_at_forward(Tensor o, Tensor tok, Tensor pos, Tensor wte, Tensor wpe) override {
        timed("embedding_at_forward", [&] { be_.embedding_at_forward(o, tok, pos, wte, wpe); });
    }
    void rope_at_forward(Tensor qkv, Tensor pos, int64_t H, int64_t Hkv,
                         const backend::RopeParams& rope) override {
        timed("rope_at_forward", [&] { be_.rope_at_forward(qkv, pos, H, Hkv, rope); });
    }
    void paged_kv_write(Tensor k, Tensor v, Tensor qkv, Tensor table, Tensor seq, Tensor pos,
                        int64_t H, int64_t Hkv) override {
        timed("paged_kv_write", [&] { be_.paged_kv_write(k, v, qkv, table, seq, pos, H, Hkv); });
    }
    void paged_attention_forward(Tensor o, Tensor qkv, Tensor k, Tensor v, Tensor table,
                                 Tensor seq, Tensor pos, int64_t H, int64_t Hkv) override {
        timed("paged_attention_forward",
              [&] { be_.paged_attention_forward(o, qkv, k, v, table, seq, pos, H, Hkv); });
    }
    std::vector<std::string_view> missing_kernels() const override {
        return be_.missing_kernels();
    }
    void add(Tensor o, Tensor a, Tensor b) override {
        timed("add", [&] { be_.add(o, a, b); });
    }
    void cross_entropy_forward(Tensor l, Tensor lse, Tensor z, Tensor t, int32_t ig) override {
        timed("cross_entropy_forward", [&] { be_.cross_entropy_forward(l, lse, z, t, ig); });
    }
    void cross_entropy_backward(Tensor dz, Tensor z, Tensor lse, Tensor t, Tensor w, float dl,
                                int32_t ig) override {
        timed("cross_entropy_backward",
              [&] { be_.cross_entropy_backward(dz, z, lse, t, w, dl, ig); });
    }
    double sum(Tensor x) override {
        double r = 0;
        timed("sum", [&] { r = be_.sum(x); });
        return r;
    }
    double sum_squares(Tensor x) override {
        double r = 0;
        timed("sum_squares", [&] { r = be_.sum_squares(x); });
        return r;
    }
    void scale(Tensor x, float s) override {
        timed("scale", [&] { be_.scale(x, s); });
    }
    void adamw_update(Tensor p, Tensor g, Tensor m, Tensor v,
                      const backend::AdamWParams& hp) override {
        timed("adamw_update", [&] { be_.adamw_update(p, g, m, v, hp); });
    }

   private:
    struct Total {
        double seconds = 0;
        int64_t calls = 0;
    };
    template <typename Fn>
    void timed(const std::string& key, Fn&& fn) {
        const auto start = std::chrono::steady_clock::now();
        fn();
        be_.synchronize();
        Total& t = totals_[key];
        t.seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        ++t.calls;
    }

    backend::Backend& be_;
    std::map<std::string, Total> totals_;
};

}  // namespace tandem::bench

// Every kernel of the cuda backend against reference/, in f32 and bf16, on random inputs with
// awkward sizes (1, 7, 33, 4097, non-multiples of the warp width), GQA and ignored targets.
// Outputs that must be overwritten start as NaN; `+=` outputs start random.
#include <gtest/gtest.h>

#include "backend/cuda/cuda_test_util.h"

namespace tandem::testing {
namespace {

class CudaKernels : public ::testing::TestWithParam<DType> {
protected:
    void SetUp() override { TANDEM_SKIP_WITHOUT_CUDA(); }
    DType dtype() const { return GetParam(); }
    double tol() const { return kDefaultBudget.of(dtype()); }
    Pair values(const std::vector<float>& host, Shape shape) {
        return make_pair(host, shape, dtype());
    }
};

INSTANTIATE_TEST_SUITE_P(Dtypes, CudaKernels, ::testing::Values(DType::F32, DType::BF16),
                         [](const auto& info) { return std::string(dtype_name(info.param)); });

TEST_P(CudaKernels, EmbeddingForwardAndBackward) {
    for (auto [B, T, C, V, with_wpe] : {std::tuple{2, 7, 33, 11, true}, std::tuple{1, 1, 1, 3, false},
                                        std::tuple{3, 65, 96, 50, true}}) {
        const std::string what = "B=" + std::to_string(B) + " T=" + std::to_string(T) +
                                 " C=" + std::to_string(C);
        Pair tokens = make_ints(random_ints(B * T, 1, 0, V - 1), {B, T});
        Pair wte = values(random_normal(V * C, 2), {V, C});
        Pair wpe = with_wpe ? values(random_normal((T + 3) * C, 3), {T + 3, C}) : Pair{};
        Pair out = make_poisoned({B, T, C}, dtype());
        run_both([&](backend::Backend& be, Side s) {
            be.embedding_forward(s(out), s(tokens), s(wte), s(wpe), with_wpe ? 2 : 0);
        });
        expect_close(out, tol(), "embedding_forward " + what);

        Pair dout = values(random_normal(B * T * C, 4), {B, T, C});
        Pair dwte = values(random_normal(V * C, 5), {V, C});  // accumulated into
        Pair dwpe = with_wpe ? values(random_normal((T + 3) * C, 6), {T + 3, C}) : Pair{};
        run_both([&](backend::Backend& be, Side s) {
            be.embedding_backward(s(dwte), s(dwpe), s(dout), s(tokens));
        });
        expect_close(dwte, tol(), "embedding_backward dwte " + what);
        if (with_wpe) expect_close(dwpe, tol(), "embedding_backward dwpe " + what);
    }
}

TEST_P(CudaKernels, LayerNormForwardAndBackward) {
    for (int64_t C : {1, 7, 33, 768, 4097}) {
        const int64_t N = C == 4097 ? 5 : 37;
        const std::string what = "N=" + std::to_string(N) + " C=" + std::to_string(C);
        Pair x = values(random_normal(N * C, 1, 2.0f), {N, C});
        Pair w = values(random_normal(C, 2), {C});
        Pair bias = values(random_normal(C, 3), {C});
        Pair y = make_poisoned({N, C}, dtype());
        Pair mean = make_poisoned({N}, DType::F32), rstd = make_poisoned({N}, DType::F32);
        run_both([&](backend::Backend& be, Side s) {
            be.layer_norm_forward(s(y), s(mean), s(rstd), s(x), s(w), s(bias), 1e-5f);
        });
        expect_close(y, tol(), "layer_norm y " + what);
        expect_close(mean, tol(), "layer_norm mean " + what);
        expect_close(rstd, tol(), "layer_norm rstd " + what);

        Pair dy = values(random_normal(N * C, 4), {N, C});
        Pair dx = values(random_normal(N * C, 5), {N, C});  // dx +=
        Pair dw = values(random_normal(C, 6), {C}), db = values(random_normal(C, 7), {C});
        // Both sides use reference's statistics, so that only backward is measured.
        Pair mean_in = make_pair(mean.want.to_host(), {N}, DType::F32);
        Pair rstd_in = make_pair(rstd.want.to_host(), {N}, DType::F32);
        run_both([&](backend::Backend& be, Side s) {
            be.layer_norm_backward(s(dx), s(dw), s(db), s(dy), s(x), s(w), s(mean_in), s(rstd_in));
        });
        expect_close(dx, tol(), "layer_norm dx " + what);
        expect_close(dw, tol(), "layer_norm dweight " + what);
        expect_close(db, tol(), "layer_norm dbias " + what);
    }
}

TEST_P(CudaKernels, RmsNormForwardAndBackward) {
    for (int64_t C : {1, 7, 33, 1024, 4097}) {
        const int64_t N = C == 4097 ? 3 : 33;
        const std::string what = "N=" + std::to_string(N) + " C=" + std::to_string(C);
        Pair x = values(random_normal(N * C, 11), {N, C});
        Pair w = values(random_normal(C, 12), {C});
        Pair y = make_poisoned({N, C}, dtype()), rstd = make_poisoned({N}, DType::F32);
        run_both([&](backend::Backend& be, Side s) {
            be.rms_norm_forward(s(y), s(rstd), s(x), s(w), 1e-6f);
        });
        expect_close(y, tol(), "rms_norm y " + what);
        expect_close(rstd, tol(), "rms_norm rstd " + what);

        Pair dy = values(random_normal(N * C, 13), {N, C});
        Pair dx = values(random_normal(N * C, 14), {N, C});
        Pair dw = values(random_normal(C, 15), {C});
        Pair rstd_in = make_pair(rstd.want.to_host(), {N}, DType::F32);
        run_both([&](backend::Backend& be, Side s) {
            be.rms_norm_backward(s(dx), s(dw), s(dy), s(x), s(w), s(rstd_in));
        });
        expect_close(dx, tol(), "rms_norm dx " + what);
        expect_close(dw, tol(), "rms_norm dweight " + what);
    }
}

TEST_P(CudaKernels, QkNormForwardAndBackward) {
    for (auto [B, T, H, Hkv, D] : {std::tuple{2, 7, 6, 2, 16}, std::tuple{1, 33, 4, 4, 128},
                                   std::tuple{1, 1, 2, 1, 8}}) {
        const int64_t W = (H + 2 * Hkv) * D;
        const std::string what = "T=" + std::to_string(T) + " D=" + std::to_string(D);
        Pair qkv = values(random_normal(B * T * W, 21), {B, T, W});
        Pair qw = values(random_normal(D, 22), {D}), kw = values(random_normal(D, 23), {D});
        Pair y = make_poisoned({B, T, W}, dtype());
        Pair rstd = make_poisoned({B, T, H + Hkv}, DType::F32);
        run_both([&](backend::Backend& be, Side s) {
            be.qk_norm_forward(s(y), s(rstd), s(qkv), s(qw), s(kw), H, Hkv, 1e-6f);
        });
        expect_close(y, tol(), "qk_norm y " + what);
        expect_close(rstd, tol(), "qk_norm rstd " + what);

        Pair dy = values(random_normal(B * T * W, 24), {B, T, W});
        Pair dqkv = make_poisoned({B, T, W}, dtype());
        Pair dqw = values(random_normal(D, 25), {D}), dkw = values(random_normal(D, 26), {D});
        Pair rstd_in = make_pair(rstd.want.to_host(), {B, T, H + Hkv}, DType::F32);
        run_both([&](backend::Backend& be, Side s) {
            be.qk_norm_backward(s(dqkv), s(dqw), s(dkw), s(dy), s(qkv), s(qw), s(kw), s(rstd_in),
                                H, Hkv);
        });
        expect_close(dqkv, tol(), "qk_norm dqkv " + what);
        expect_close(dqw, tol(), "qk_norm dq_weight " + what);
        expect_close(dkw, tol(), "qk_norm dk_weight " + what);
    }
}

TEST_P(CudaKernels, MatmulAllTransposesBiasAndAccumulate) {
    for (auto [M, N, K] : {std::tuple{1, 1, 1}, std::tuple{7, 33, 5}, std::tuple{64, 96, 4097},
                           std::tuple{33, 50, 768}, std::tuple{128, 256, 64}})
        for (bool ta : {false, true})
            for (bool tb : {false, true})
                for (bool with_bias : {false, true})
                    for (bool accumulate : {false, true}) {
                        const std::string what =
                            "M=" + std::to_string(M) + " N=" + std::to_string(N) +
                            " K=" + std::to_string(K) + " ta=" + std::to_string(ta) +
                            " tb=" + std::to_string(tb) + " bias=" + std::to_string(with_bias) +
                            " acc=" + std::to_string(accumulate);
                        Pair a = values(random_normal(M * K, M + K), ta ? Shape{K, M} : Shape{M, K});
                        Pair b = values(random_normal(K * N, N + K), tb ? Shape{N, K} : Shape{K, N});
                        Pair bias = with_bias ? values(random_normal(N, 3), {N}) : Pair{};
                        Pair out = accumulate ? values(random_normal(M * N, 4), {M, N})
                                              : make_poisoned({M, N}, dtype());
                        run_both([&](backend::Backend& be, Side s) {
                            be.matmul(s(out), s(a), s(b), s(bias), ta, tb, accumulate);
                        });
                        expect_close(out, tol(), "matmul " + what);
                    }
}

TEST_P(CudaKernels, MatmulBatched) {
    for (auto [S, M, N, K] : {std::tuple{3, 7, 33, 17}, std::tuple{24, 64, 64, 64}})
        for (bool ta : {false, true})
            for (bool tb : {false, true}) {
                const std::string what = "S=" + std::to_string(S) + " ta=" + std::to_string(ta) +
                                         " tb=" + std::to_string(tb);
                Pair a = values(random_normal(S * M * K, 31), ta ? Shape{S, K, M} : Shape{S, M, K});
                Pair b = values(random_normal(S * K * N, 32), tb ? Shape{S, N, K} : Shape{S, K, N});
                Pair out = values(random_normal(S * M * N, 33), {S, M, N});
                run_both([&](backend::Backend& be, Side s) {
                    be.matmul(s(out), s(a), s(b), Tensor{}, ta, tb, true);
                });
                expect_close(out, tol(), "batched matmul " + what);
            }
}

TEST_P(CudaKernels, BiasBackward) {
    for (auto [M, N] : {std::tuple{1, 1}, std::tuple{7, 33}, std::tuple{8192, 97},
                        std::tuple{5, 4097}}) {
        Pair dout = values(random_normal(M * N, 41), {M, N});
        Pair dbias = values(random_normal(N, 42), {N});
        run_both([&](backend::Backend& be, Side s) { be.bias_backward(s(dbias), s(dout)); });
        expect_close(dbias, tol(), "bias_backward M=" + std::to_string(M));
    }
}

TEST_P(CudaKernels, GeluAndSwiglu) {
    for (int64_t n : {1, 7, 33, 4097}) {
        Pair x = values(random_normal(n * 3, 51, 3.0f), {n, 3});
        Pair y = make_poisoned({n, 3}, dtype());
        run_both([&](backend::Backend& be, Side s) { be.gelu_forward(s(y), s(x)); });
        expect_close(y, tol(), "gelu_forward n=" + std::to_string(n));
        Pair dy = values(random_normal(n * 3, 52), {n, 3});
        Pair dx = make_poisoned({n, 3}, dtype());
        run_both([&](backend::Backend& be, Side s) { be.gelu_backward(s(dx), s(dy), s(x)); });
        expect_close(dx, tol(), "gelu_backward n=" + std::to_string(n));
        // dx aliasing dy
        run_both([&](backend::Backend& be, Side s) { be.gelu_backward(s(dy), s(dy), s(x)); });
        expect_close(dy, tol(), "gelu_backward in place n=" + std::to_string(n));

        const int64_t F = n == 4097 ? 33 : n;
        Pair gu = values(random_normal(n * 2 * F, 53, 2.0f), {n, 2 * F});
        Pair sy = make_poisoned({n, F}, dtype());
        run_both([&](backend::Backend& be, Side s) { be.swiglu_forward(s(sy), s(gu)); });
        expect_close(sy, tol(), "swiglu_forward n=" + std::to_string(n));
        Pair sdy = values(random_normal(n * F, 54), {n, F});
        Pair dgu = make_poisoned({n, 2 * F}, dtype());
        run_both([&](backend::Backend& be, Side s) { be.swiglu_backward(s(dgu), s(sdy), s(gu)); });
        expect_close(dgu, tol(), "swiglu_backward n=" + std::to_string(n));
    }
}

TEST_P(CudaKernels, RopeForwardAndBackward) {
    // Llama 3.1's rescaling with a short original context, so that all three bands occur.
    const backend::RopeParams plain{10000.0f}, plain_qwen{1e6f},
        llama3{500000.0f, {.factor = 8.0f, .low_freq_factor = 1.0f, .high_freq_factor = 4.0f,
                           .original_max_positions = 64}};
    for (auto [B, T, H, Hkv, D] : {std::tuple{2, 7, 6, 2, 16}, std::tuple{1, 33, 3, 3, 8},
                                   std::tuple{1, 5, 2, 1, 128}})
        for (int64_t pos_offset : {0, 1000})
            for (bool scaled : {false, true}) {
            const int64_t W = (H + 2 * Hkv) * D;
            const std::string what = "T=" + std::to_string(T) + " D=" + std::to_string(D) +
                                     " offset=" + std::to_string(pos_offset) +
                                     (scaled ? " llama3" : "");
            Pair qkv = values(random_normal(B * T * W, 61), {B, T, W});
            run_both([&](backend::Backend& be, Side s) {
                be.rope_forward(s(qkv), H, Hkv, scaled ? llama3 : plain, pos_offset);
            });
            expect_close(qkv, tol(), "rope_forward " + what);
            run_both([&](backend::Backend& be, Side s) {
                be.rope_backward(s(qkv), H, Hkv, scaled ? llama3 : plain_qwen, pos_offset);
            });
            expect_close(qkv, tol(), "rope_backward " + what);
        }
}

struct Heads {
    int64_t B, T, H, Hkv, D;
};

void check_attention(DType dtype, Heads h) {
    const int64_t W = (h.H + 2 * h.Hkv) * h.D;
    const std::string what = "B=" + std::to_string(h.B) + " T=" + std::to_string(h.T) +
                             " H=" + std::to_string(h.H) + " Hkv=" + std::to_string(h.Hkv) +
                             " D=" + std::to_string(h.D);
    Pair qkv = make_pair(random_normal(h.B * h.T * W, 71 + h.T, 1.5f), {h.B, h.T, W}, dtype);
    Pair out = make_poisoned({h.B, h.T, h.H * h.D}, dtype);
    Pair lse = make_poisoned({h.B, h.H, h.T}, DType::F32);
    run_both([&](backend::Backend& be, Side s) {
        be.attention_forward(s(out), s(lse), s(qkv), h.H, h.Hkv);
    });
    expect_close(out, kDefaultBudget.of(dtype), "attention out " + what);
    expect_close(lse, kDefaultBudget.of(dtype), "attention lse " + what);

    Pair dout = make_pair(random_normal(h.B * h.T * h.H * h.D, 72), {h.B, h.T, h.H * h.D}, dtype);
    Pair dqkv = make_poisoned({h.B, h.T, W}, dtype);
    run_both([&](backend::Backend& be, Side s) {
        be.attention_backward(s(dqkv), s(dout), s(qkv), s(out), s(lse), h.H, h.Hkv);
    });
    expect_close(dqkv, kAttentionBackwardBudget.of(dtype), "attention dqkv " + what);
}

TEST_P(CudaKernels, AttentionGroupedQueryAwkwardSizes) {
    for (int64_t T : {1, 7, 33})
        for (int64_t D : {8, 16, 64, 128}) check_attention(dtype(), {2, T, 6, 2, D});
    check_attention(dtype(), {1, 130, 4, 1, 32});  // several tiles, 4 q heads per kv head
    check_attention(dtype(), {2, 67, 3, 3, 12});   // plain multi-head, D not a power of two
}

TEST_P(CudaKernels, AttentionLongSequence) {
    check_attention(dtype(), {1, 300, 2, 1, 64});
}

TEST_P(CudaKernels, CrossEntropyWithIgnoredTargets) {
    for (auto [N, V] : {std::tuple{1, 1}, std::tuple{7, 33}, std::tuple{33, 4097},
                        std::tuple{4, 50304}}) {
        const std::string what = "N=" + std::to_string(N) + " V=" + std::to_string(V);
        Pair logits = values(random_normal(N * V, 81, 3.0f), {N, V});
        std::vector<int32_t> t = random_ints(N, 82, 0, V - 1);
        for (int64_t i = 0; i < N; i += 3) t[i] = -100;  // ignored rows, the first among them
        Pair targets = make_ints(t, {N});
        Pair losses = make_poisoned({N}, DType::F32), lse = make_poisoned({N}, DType::F32);
        run_both([&](backend::Backend& be, Side s) {
            be.cross_entropy_forward(s(losses), s(lse), s(logits), s(targets), -100);
        });
        expect_close(losses, tol(), "cross_entropy losses " + what);
        expect_close(lse, tol(), "cross_entropy lse " + what);

        Pair dlogits = make_poisoned({N, V}, dtype());
        run_both([&](backend::Backend& be, Side s) {
            be.cross_entropy_backward(s(dlogits), s(logits), s(lse), s(targets), {}, 0.25f, -100);
        });
        expect_close(dlogits, tol(), "cross_entropy dlogits " + what);
        // per-token weights, every fourth of them 0 (a mask)
        std::vector<float> w = random_uniform(N, 83, 0.0f, 2.0f);
        for (int64_t i = 1; i < N; i += 4) w[i] = 0.0f;
        Pair weights = make_pair(w, {N}, DType::F32);
        run_both([&](backend::Backend& be, Side s) {
            be.cross_entropy_backward(s(dlogits), s(logits), s(lse), s(targets), s(weights), 0.25f,
                                      -100);
        });
        expect_close(dlogits, tol(), "cross_entropy weighted dlogits " + what);
        // dlogits aliasing logits, as the model calls it
        run_both([&](backend::Backend& be, Side s) {
            be.cross_entropy_backward(s(logits), s(logits), s(lse), s(targets), {}, 0.25f, -100);
        });
        expect_close(logits, tol(), "cross_entropy dlogits in place " + what);
    }
}

TEST_P(CudaKernels, AddScaleAndSums) {
    for (int64_t n : {1, 7, 33, 4097, 1 << 20}) {
        const std::string what = "n=" + std::to_string(n);
        Pair a = values(random_normal(n, 91), {n}), b = values(random_normal(n, 92), {n});
        Pair out = make_poisoned({n}, dtype());
        run_both([&](backend::Backend& be, Side s) { be.add(s(out), s(a), s(b)); });
        expect_close(out, tol(), "add " + what);
        run_both([&](backend::Backend& be, Side s) { be.add(s(a), s(a), s(b)); });
        expect_close(a, tol(), "add in place " + what);
        run_both([&](backend::Backend& be, Side s) { be.scale(s(b), -0.37f); });
        expect_close(b, tol(), "scale " + what);

        // Both sides accumulate in double over the same (dtype-rounded) values.
        Pair c = values(random_normal(n, 93, 2.0f), {n});
        const double want_sum = reference_backend().sum(c.want), got_sum = cuda_backend().sum(c.got);
        EXPECT_NEAR(got_sum, want_sum, 1e-9 * (1.0 + std::abs(want_sum))) << "sum " << what;
        const double want_sq = reference_backend().sum_squares(c.want);
        const double got_sq = cuda_backend().sum_squares(c.got);
        EXPECT_NEAR(got_sq, want_sq, 1e-10 * want_sq) << "sum_squares " << what;
    }
}

TEST_P(CudaKernels, AdamW) {
    for (int64_t n : {1, 7, 4097}) {
        // param and grad in the compute dtype (reference sees them rounded), moments f32.
        Pair param = values(random_normal(n, 101), {n});
        Pair grad = values(random_normal(n, 102, 0.1f), {n});
        Pair m = make_pair(random_normal(n, 103, 0.01f), {n}, DType::F32);
        std::vector<float> v0 = random_uniform(n, 104, 0.0f, 1e-3f);
        Pair v = make_pair(v0, {n}, DType::F32);
        backend::AdamWParams hp;
        hp.lr = 3e-3f;
        hp.weight_decay = 0.1f;
        hp.step = 7;
        run_both([&](backend::Backend& be, Side s) {
            be.adamw_update(s(param), s(grad), s(m), s(v), hp);
        });
        expect_close(param, tol(), "adamw param n=" + std::to_string(n));
        expect_close(m, kDefaultBudget.f32, "adamw m n=" + std::to_string(n));
        expect_close(v, kDefaultBudget.f32, "adamw v n=" + std::to_string(n));
    }
}

}  // namespace
}  // namespace tandem::testing

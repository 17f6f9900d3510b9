// Attention over a key/value cache: every backend against reference/, and, on every backend
// including reference/, feeding a sequence in chunks through the cache gives the same outputs as
// causal attention over the whole sequence at once.
#include <gtest/gtest.h>

#include "conformance.h"

namespace tandem::testing {
namespace {

struct CacheCase {
    int64_t B, H, Hkv, D, S;
};

TEST(KvCache, CachedAttentionMatchesReference) {
    for (const Target& target : conformance_targets())
        for (CacheCase c : {CacheCase{2, 6, 2, 16, 50}, CacheCase{1, 4, 4, 64, 9}, CacheCase{3, 2, 1, 8, 40}})
            for (auto [pos, Tq] : {std::pair<int64_t, int64_t>{0, 1}, {0, 9}, {5, 1}, {5, 3}, {39, 1}}) {
                if (pos + Tq > c.S) continue;
                const int64_t W = (c.H + 2 * c.Hkv) * c.D, KV = c.Hkv * c.D;
                const std::string what = target.label() + " pos=" + std::to_string(pos) +
                                         " Tq=" + std::to_string(Tq) + " D=" + std::to_string(c.D);
                // Earlier positions already in the cache; the new ones are written by the kernel.
                Pair k = values(target, random_normal(c.B * c.S * KV, 11 + pos), {c.B, c.S, KV});
                Pair v = values(target, random_normal(c.B * c.S * KV, 12 + pos), {c.B, c.S, KV});
                Pair qkv = values(target, random_normal(c.B * Tq * W, 13 + Tq), {c.B, Tq, W});
                Pair out = overwritten(target, {c.B, Tq, c.H * c.D}, target.dtype);
                run_both(target, [&](backend::Backend& be, Side s) {
                    be.kv_cache_write(s(k), s(v), s(qkv), c.H, c.Hkv, pos);
                    be.attention_cached_forward(s(out), s(qkv), s(k), s(v), c.H, c.Hkv, pos);
                });
                expect_close(k, kDefaultTolerance.of(target.dtype), what + " k cache");
                expect_close(v, kDefaultTolerance.of(target.dtype), what + " v cache");
                expect_close(out, kDefaultTolerance.of(target.dtype), what + " out");
            }
}

// Prefill 5 positions, then decode one at a time: the outputs equal full causal attention.
void check_chunked_equals_full(backend::Backend& be, DType dtype) {
    const int64_t B = 2, T = 12, H = 4, Hkv = 2, D = 16, W = (H + 2 * Hkv) * D, KV = Hkv * D;
    const std::vector<float> host = random_normal(B * T * W, 21);
    DeviceTensor qkv = DeviceTensor::from(be, host, {B, T, W}, dtype);
    DeviceTensor full(be, dtype, {B, T, H * D});
    DeviceTensor lse(be, backend::stats_dtype(dtype), {B, H, T});
    be.attention_forward(full, lse, qkv, H, Hkv);

    DeviceTensor k(be, dtype, {B, T, KV}), v(be, dtype, {B, T, KV});
    std::vector<float> chunked(B * T * H * D);
    int64_t pos = 0;
    for (int64_t Tq : {5, 1, 1, 1, 1, 1, 1, 1}) {
        std::vector<float> part(B * Tq * W);
        for (int64_t b = 0; b < B; ++b)
            std::copy_n(host.begin() + (b * T + pos) * W, Tq * W, part.begin() + b * Tq * W);
        DeviceTensor chunk = DeviceTensor::from(be, part, {B, Tq, W}, dtype);
        DeviceTensor out(be, dtype, {B, Tq, H * D});
        be.kv_cache_write(k, v, chunk, H, Hkv, pos);
        be.attention_cached_forward(out, chunk, k, v, H, Hkv, pos);
        const std::vector<float> got = out.to_host();
        for (int64_t b = 0; b < B; ++b)
            std::copy_n(got.begin() + b * Tq * H * D, Tq * H * D, chunked.begin() + (b * T + pos) * H * D);
        pos += Tq;
    }
    ASSERT_EQ(pos, T);
    EXPECT_LE(relative_error(chunked, full.to_host()), 1e-5) << be.name();
}

TEST(KvCache, ChunkedDecodingEqualsFullCausalAttention) {
    check_chunked_equals_full(reference_backend(), DType::F32);
    for (const std::string& name : backends_under_test()) {
        backend::Backend& be = backend::get_backend(name);
        if (be.supports(DType::F32)) check_chunked_equals_full(be, DType::F32);
    }
}

}  // namespace
}  // namespace tandem::testing

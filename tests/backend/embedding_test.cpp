// Token and position embeddings: every backend against reference/ (with repeated tokens, so that
// gradient rows collect several positions), reference/ against a hand-built case.
#include <gtest/gtest.h>

#include "conformance.h"
#include "gradcheck.h"

namespace tandem::testing {
namespace {

struct Sizes {
    int64_t B, T, C, V, T_max, pos_offset;
};

// Inference tables in a storage dtype: rows widened exactly, so the host backends agree with
// reference/ to the last bit of the f32 addition.
TEST(Embedding, ReadsTablesInEveryStorageDtype) {
    for (const Target& target : conformance_targets()) {
        if (target.dtype != DType::F32 || target.backend->device() != Device::Host) continue;
        for (DType table : {DType::F16, DType::BF16, DType::Q8_0, DType::Q4_0}) {
            const int64_t B = 2, T = 5, C = 64, V = 9, T_max = 12, pos_offset = 4;
            Pair tokens = ints(target, random_ints(B * T, 1, 0, V), {B, T});
            const std::vector<float> wte_values = random_normal(V * C, 2),
                                     wpe_values = random_normal(T_max * C, 3);
            Pair wte{DeviceTensor::from(*target.backend, wte_values, {V, C}, table),
                     DeviceTensor::from(reference_backend(), wte_values, {V, C}, table)};
            Pair wpe{DeviceTensor::from(*target.backend, wpe_values, {T_max, C}, table),
                     DeviceTensor::from(reference_backend(), wpe_values, {T_max, C}, table)};
            Pair out = values(target, random_normal(B * T * C, 4), {B, T, C});
            run_both(target, [&](backend::Backend& be, Side s) {
                be.embedding_forward(s(out), s(tokens), s(wte), s(wpe), pos_offset);
            });
            expect_close(out, 1e-7, target.label() + " " + std::string(dtype_name(table)));
            // And the values are the table's: token row plus position row, widened.
            const std::vector<float> got = out.want.to_host(), e = wte.want.to_host(),
                                     p = wpe.want.to_host();
            const std::vector<float> toks = tokens.want.to_host();
            EXPECT_EQ(got[C + 3], e[static_cast<int64_t>(toks[1]) * C + 3] + p[(pos_offset + 1) * C + 3]);
        }
    }
}

TEST(Embedding, MatchesReferenceWithAndWithoutLearnedPositions) {
    for (const Target& target : conformance_targets())
        for (Sizes z : {Sizes{2, 7, 33, 5, 16, 3}, Sizes{1, 1, 1, 1, 1, 0},
                        Sizes{4, 33, 64, 1000, 40, 7}, Sizes{2, 9, 4097, 3, 9, 0}})
            for (bool has_wpe : {true, false}) {
                const auto [B, T, C, V, T_max, pos_offset] = z;
                const std::string what = target.label() + " B=" + std::to_string(B) +
                                         " T=" + std::to_string(T) + " C=" + std::to_string(C) +
                                         " V=" + std::to_string(V) + (has_wpe ? " wpe" : "");
                Pair tokens = ints(target, random_ints(B * T, 1, 0, V), {B, T});
                Pair wte = values(target, random_normal(V * C, 2), {V, C});
                Pair wpe =
                    has_wpe ? values(target, random_normal(T_max * C, 3), {T_max, C}) : none();
                Pair out = values(target, random_normal(B * T * C, 4), {B, T, C});  // overwritten
                run_both(target, [&](backend::Backend& be, Side s) {
                    be.embedding_forward(s(out), s(tokens), s(wte), s(wpe), pos_offset);
                });
                expect_close(out, kDefaultTolerance.of(target.dtype), what + " out");

                // Gradients accumulate: start from random values.
                Pair dout = values(target, random_normal(B * T * C, 5), {B, T, C});
                Pair dwte = values(target, random_normal(V * C, 6), {V, C});
                Pair dwpe =
                    has_wpe ? values(target, random_normal(T_max * C, 7), {T_max, C}) : none();
                run_both(target, [&](backend::Backend& be, Side s) {
                    be.embedding_backward(s(dwte), s(dwpe), s(dout), s(tokens));
                });
                expect_close(dwte, kDefaultTolerance.of(target.dtype), what + " dwte");
                if (has_wpe) expect_close(dwpe, kDefaultTolerance.of(target.dtype), what + " dwpe");
            }
}

TEST(Embedding, ReferenceAddsTokenAndPositionRowsAndSumsRepeatedTokens) {
    auto& ref = reference_backend();
    const int64_t B = 1, T = 3, C = 2, V = 3;
    HostF64 wte({V, C}, 0), wpe({4, C}, 0), out({B, T, C}, 0), dout({B, T, C}, 0);
    HostF64 dwte({V, C}, 0), dwpe({4, C}, 0);
    wte.data = {1, 2, 10, 20, 100, 200};
    wpe.data = {0.5, 0.25, 1, 1, 2, 2, 3, 3};
    std::vector<int32_t> ids = {2, 0, 2};
    Tensor tokens(ids.data(), DType::I32, {B, T});
    ref.embedding_forward(out, tokens, wte, wpe, 1);
    EXPECT_EQ(out.data, (std::vector<double>{101, 201, 3, 4, 103, 203}));

    dout.data = {1, 2, 3, 4, 5, 6};
    dwte.data[0] = 0.5;                                // accumulated onto
    ref.embedding_backward(dwte, dwpe, dout, tokens);  // backward has no offset: rows 0..T-1
    EXPECT_EQ(dwte.data, (std::vector<double>{3.5, 4, 0, 0, 6, 8}));
    EXPECT_EQ(dwpe.data, (std::vector<double>{1, 2, 3, 4, 5, 6, 0, 0}));
}

TEST(Embedding, ReferenceBackwardMatchesFiniteDifferences) {
    auto& ref = reference_backend();
    const int64_t B = 2, T = 3, C = 4, V = 3;
    HostF64 wte({V, C}, 121), wpe({T, C}, 122), dout({B, T, C}, 123), out({B, T, C}, 0);
    HostF64 dwte({V, C}, 0), dwpe({T, C}, 0);
    std::vector<int32_t> ids = {2, 0, 2, 1, 2, 2};  // token 2 at four positions
    Tensor tokens(ids.data(), DType::I32, {B, T});
    auto loss = [&] {
        ref.embedding_forward(out, tokens, wte, wpe, 0);
        return dot(out.data, dout.data);
    };
    ref.embedding_backward(dwte, dwpe, dout, tokens);
    EXPECT_LT(gradient_error(wte.data, dwte.data, loss), kFiniteDifferenceTolerance);
    EXPECT_LT(gradient_error(wpe.data, dwpe.data, loss), kFiniteDifferenceTolerance);
}

}  // namespace
}  // namespace tandem::testing

#include "infer/decoder.h"

#include <gtest/gtest.h>

#include "backend/registry.h"
#include "common/test_util.h"
#include "core/error.h"
#include "model/config.h"
#include "model/model.h"

namespace tandem::infer {
namespace {

model::ModelConfig small(const std::string& preset) {
    model::ModelConfig c = model::preset_config(preset);
    c.vocab_size = 97;
    c.max_seq_len = 32;
    if (c.family == model::Family::Gpt2) c.n_layers = 2, c.d_model = 32, c.n_heads = 4, c.n_heads_kv = 4, c.head_dim = 8, c.d_ffn = 64;
    return c;
}

// Logits of every position from one full forward pass, against the decoder fed a prefill chunk
// and then one token at a time.
void check_decoder_matches_forward(const std::string& preset, const std::string& backend_name) {
    const model::ModelConfig config = small(preset);
    backend::Backend& be = backend::get_backend(backend_name);
    const int64_t B = 2, T = 11, V = config.vocab_size;
    model::Model full(config, be, DType::F32, B, T);
    full.init(5);
    const std::vector<int32_t> tokens = testing::random_ints(B * T, 9, 0, int32_t(V));
    full.forward(tokens, {}, B, T);
    std::vector<float> want(B * T * V);
    be.copy_to_host(want.data(), full.logits().data, want.size() * sizeof(float));

    Decoder decoder(full.weights(), B, T, 4);
    int64_t pos = 0;
    for (int64_t Tq : {4, 1, 1, 3, 1, 1}) {
        std::vector<int32_t> chunk(B * Tq);
        for (int64_t b = 0; b < B; ++b)
            for (int64_t t = 0; t < Tq; ++t) chunk[b * Tq + t] = tokens[b * T + pos + t];
        const std::vector<float>& got = decoder.feed(chunk, B, Tq);
        pos += Tq;
        for (int64_t b = 0; b < B; ++b) {
            std::vector<float> g(got.begin() + b * V, got.begin() + (b + 1) * V);
            std::vector<float> w(want.begin() + (b * T + pos - 1) * V, want.begin() + (b * T + pos) * V);
            EXPECT_LE(testing::relative_error(g, w), 1e-5) << preset << " on " << backend_name << " at position " << pos - 1;
        }
    }
    EXPECT_EQ(decoder.position(), T);
    EXPECT_THROW(decoder.feed(std::vector<int32_t>(B, 1), B, 1), Error);  // past the context
}

TEST(Decoder, MatchesFullForwardForEveryFamilyAndBackend) {
    for (const std::string& name : backend::available_backends())
        if (backend::get_backend(name).supports(DType::F32) &&
            backend::get_backend(name).missing_kernels().empty())
            for (const char* preset : {"tiny", "qwen3-tiny", "gpt2-124m"})
                check_decoder_matches_forward(preset, name);
}

TEST(Decoder, RejectsTokensOutsideTheVocabulary) {
    model::Model m(small("tiny"), backend::get_backend("cpu"), DType::F32, 1, 1);
    m.init(1);
    Decoder decoder(m.weights(), 1, 8, 8);
    try {
        decoder.feed(std::vector<int32_t>{3, 97}, 1, 2);
        FAIL();
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("97"), std::string::npos);
    }
}

}  // namespace
}  // namespace tandem::infer

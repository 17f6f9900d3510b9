// PagedForward against the training forward pass: several sequences of different lengths, run
// as mixed steps (prefill chunks beside single decode tokens) over pages handed out in a
// scrambled order, give the logits Model::forward gives each sequence alone; every malformed
// batch is an Error naming its culprit; a backend lacking an inference kernel is refused.
#include "infer/paged_forward.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>

#include "backend/host_memory.h"
#include "backend/registry.h"
#include "common/test_util.h"
#include "core/error.h"
#include "core/quant.h"
#include "model/model.h"

namespace tandem::infer {
namespace {

model::ModelConfig config_of(const std::string& name) {
    if (name == "gpt2") {  // GPT-2's wiring (learned positions, LayerNorm, biases), tiny sizes
        model::ModelConfig c = model::preset_config("gpt2-124m");
        c.n_layers = 2, c.d_model = 32, c.n_heads = 4, c.n_heads_kv = 4, c.head_dim = 8;
        c.d_ffn = 64, c.vocab_size = 97, c.max_seq_len = 32;
        return c;
    }
    if (name == "llama3") {  // GQA with Llama 3's rope scaling over a short original context
        model::ModelConfig c = model::preset_config("tiny");
        c.rope_theta = 500000.0f;
        c.rope_scaling = {.factor = 8.0f,
                          .low_freq_factor = 1.0f,
                          .high_freq_factor = 4.0f,
                          .original_max_positions = 16};
        return c;
    }
    return model::preset_config(name);  // "qwen3-tiny": GQA, qk-norm, tied embeddings
}

// chunks[s][i]: rows of sequence s in step i. Sequence 0 prefills 6, decodes, then a chunk of 4;
// sequence 1 joins in step 1 with a prefill of 9 and decodes; sequence 2 runs only in step 0.
const std::vector<std::vector<int64_t>> kChunks = {{6, 1, 4, 1}, {0, 9, 1, 1, 1}, {3}};

struct Plan {
    std::vector<int64_t> lengths;
    std::vector<StepBatch> steps;
    std::vector<std::vector<int64_t>> step_rows;  // the position of each row in its sequence
};

// Pages of `page_size` from a shuffled pool, sequences in both orders within steps; logits for
// every row (all_logits) or for each sequence's last row of the step.
Plan plan(const std::vector<std::vector<int32_t>>& tokens, int64_t page_size, int64_t n_pages,
          bool all_logits) {
    Plan p;
    const int64_t S = static_cast<int64_t>(tokens.size());
    for (const auto& t : tokens) p.lengths.push_back(static_cast<int64_t>(t.size()));
    const int64_t longest = *std::max_element(p.lengths.begin(), p.lengths.end());
    const int64_t per_seq = (longest + page_size - 1) / page_size;
    std::vector<int32_t> pool(n_pages);
    std::iota(pool.begin(), pool.end(), 0);
    std::shuffle(pool.begin(), pool.end(), std::mt19937(3));
    std::vector<int32_t> table(S * per_seq, -1);
    size_t next = 0;
    for (int64_t s = 0; s < S; ++s)
        for (int64_t i = 0; i * page_size < p.lengths[s]; ++i)
            table[s * per_seq + i] = pool.at(next++);

    std::vector<int64_t> done(S, 0);
    for (size_t i = 0;; ++i) {
        StepBatch b;
        std::vector<int64_t> rows;
        for (int64_t k = 0; k < S; ++k) {
            const int64_t s = i % 2 ? S - 1 - k : k;
            if (i >= kChunks[s].size()) continue;
            for (int64_t r = 0; r < kChunks[s][i]; ++r) {
                b.tokens.push_back(tokens[s][done[s]]);
                b.positions.push_back(static_cast<int32_t>(done[s]));
                b.seq_index.push_back(static_cast<int32_t>(s));
                rows.push_back(done[s]++);
                if (all_logits || r + 1 == kChunks[s][i])
                    b.logit_rows.push_back(static_cast<int32_t>(b.tokens.size() - 1));
            }
        }
        if (b.tokens.empty()) break;
        b.page_table = table;
        b.n_seqs = S;
        b.pages_per_seq = per_seq;
        p.steps.push_back(b);
        p.step_rows.push_back(rows);
    }
    return p;
}

struct Case {
    std::string config, backend;
    DType dtype, kv;
    double tolerance;
};

void check_matches_model_forward(const Case& k, bool all_logits) {
    const model::ModelConfig config = config_of(k.config);
    backend::Backend& be = backend::get_backend(k.backend);
    const int64_t V = config.vocab_size;
    std::vector<std::vector<int32_t>> tokens;
    for (size_t s = 0; s < kChunks.size(); ++s) {
        const int64_t len = std::accumulate(kChunks[s].begin(), kChunks[s].end(), int64_t{0});
        tokens.push_back(testing::random_ints(len, 20 + s, 0, static_cast<int32_t>(V)));
    }
    model::Model full(config, be, k.dtype, 1, 16);
    full.init(5);

    const int64_t page_size = 4, n_pages = 12;
    PagedForward paged(full.weights(), {.max_tokens_per_step = 16,
                                        .pages = {n_pages, page_size},
                                        .kv_dtype = k.kv,
                                        .logit_rows_per_pass = 3});  // several LM-head passes
    const Plan p = plan(tokens, page_size, n_pages, all_logits);
    std::vector<std::vector<float>> got(tokens.size()), want(tokens.size());
    for (size_t s = 0; s < tokens.size(); ++s) {
        got[s].assign(p.lengths[s] * V, NAN);
        full.forward(tokens[s], {}, 1, p.lengths[s]);
        want[s].resize(p.lengths[s] * V);
        std::vector<char> bytes(full.logits().bytes());
        be.copy_to_host(bytes.data(), full.logits().data, bytes.size());
        convert_values(want[s].data(), DType::F32, bytes.data(), k.dtype, p.lengths[s] * V);
    }
    for (size_t i = 0; i < p.steps.size(); ++i) {
        const StepBatch& b = p.steps[i];
        const std::span<const float> logits = paged.run(b);
        ASSERT_EQ(logits.size(), b.logit_rows.size() * V);
        for (size_t j = 0; j < b.logit_rows.size(); ++j) {
            const int32_t row = b.logit_rows[j];
            std::copy_n(logits.begin() + j * V, V,
                        got[b.seq_index[row]].begin() + p.step_rows[i][row] * V);
        }
    }
    for (size_t s = 0; s < tokens.size(); ++s) {
        // Compare the positions that got logits (all of them, or each step's last rows).
        std::vector<float> g, w;
        for (int64_t t = 0; t < p.lengths[s]; ++t)
            if (!std::isnan(got[s][t * V])) {
                g.insert(g.end(), got[s].begin() + t * V, got[s].begin() + (t + 1) * V);
                w.insert(w.end(), want[s].begin() + t * V, want[s].begin() + (t + 1) * V);
            }
        ASSERT_FALSE(g.empty());
        if (all_logits) EXPECT_EQ(g.size(), got[s].size());
        EXPECT_LE(testing::relative_error(g, w), k.tolerance)
            << k.config << " on " << k.backend << "/" << dtype_name(k.dtype) << " kv "
            << dtype_name(k.kv) << " sequence " << s;
    }
}

const std::vector<std::string> kConfigs = {"gpt2", "llama3", "qwen3-tiny"};

TEST(PagedForward, ReferenceF64MatchesModelForwardExactly) {
    // f64 activations and cache: only the order of the sums differs from Model::forward.
    for (const std::string& config : kConfigs)
        for (bool all : {true, false})
            check_matches_model_forward({config, "reference", DType::F64, DType::F64, 1e-10}, all);
}

TEST(PagedForward, CpuF32MatchesModelForward) {
    // The cpu's paged attention sums in another order than its blocked training attention
    // (and uses exp_approx in both): f32 rounding through two layers stays near 1e-6.
    for (const std::string& config : kConfigs)
        check_matches_model_forward({config, "cpu", DType::F32, DType::F32, 1e-5}, true);
}

TEST(PagedForward, F16CacheStaysClose) {
    // Each key and value rounded once to 11 bits (relative 2^-12 on average).
    for (const std::string& config : kConfigs) {
        check_matches_model_forward({config, "reference", DType::F64, DType::F16, 3e-3}, true);
        check_matches_model_forward({config, "cpu", DType::F32, DType::F16, 3e-3}, true);
    }
}

// ---- malformed batches ---------------------------------------------------------------------

struct Fixture {
    model::Model model{config_of("qwen3-tiny"), backend::get_backend("cpu"), DType::F32, 1, 1};
    PagedForward paged{model.weights(), {.max_tokens_per_step = 8, .pages = {6, 4}}};
    // Two sequences: 0 at positions 0..2 (page 5), 1 decoding position 5 (pages 2 then 0).
    StepBatch good() const {
        return {.tokens = {1, 2, 3, 4},
                .positions = {0, 1, 2, 5},
                .seq_index = {0, 0, 0, 1},
                .page_table = {5, -1, 2, 0},
                .n_seqs = 2,
                .pages_per_seq = 2,
                .logit_rows = {2, 3}};
    }
};

void expect_error(PagedForward& paged, const StepBatch& batch, const std::string& culprit) {
    try {
        paged.run(batch);
        ADD_FAILURE() << "no error for " << culprit;
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find(culprit), std::string::npos)
            << "'" << e.what() << "' does not name " << culprit;
    }
}

TEST(PagedForward, RunsTheWellFormedBatchOfTheMalformedOnes) {
    Fixture f;
    EXPECT_EQ(f.paged.run(f.good()).size(), 2u * 512);
}

TEST(PagedForward, EachMalformedBatchIsAnErrorNamingTheCulprit) {
    Fixture f;
    StepBatch b = f.good();
    b.tokens[1] = 512;
    expect_error(f.paged, b, "token 512 at row 1 is outside the vocabulary [0, 512)");
    b = f.good();
    b.tokens[2] = -1;
    expect_error(f.paged, b, "token -1 at row 2");
    b = f.good();
    b.positions[3] = 256;
    expect_error(f.paged, b, "position 256 at row 3 is outside the model's context [0, 256)");
    b = f.good();
    b.seq_index[3] = 2;
    expect_error(f.paged, b, "seq_index 2 at row 3 is outside the page table's 2 sequences");
    b = f.good();
    b.positions[3] = 8;
    expect_error(f.paged, b, "position 8 at row 3 (sequence 1) is past its page table of 2 pages");
    b = f.good();
    b.page_table[2] = 6;  // sequence 1's first page: not in the pool of 6
    expect_error(f.paged, b, "sequence 1 reaches position 5 but its page 0 is 6");
    b = f.good();
    b.page_table[3] = -1;  // the page of the decoded position itself
    expect_error(f.paged, b, "its page 1 is -1");
    b = f.good();
    b.logit_rows = {3, 2};
    expect_error(f.paged, b, "logit_rows[1] = 2");
    b = f.good();
    b.logit_rows = {4};
    expect_error(f.paged, b, "logit_rows[0] = 4 is not a row of the step [0, 4)");
    b = f.good();
    b.page_table.pop_back();
    expect_error(f.paged, b, "page_table holds 3 entries, but n_seqs x pages_per_seq is 2 x 2");
    b = f.good();
    b.positions.pop_back();
    expect_error(f.paged, b, "4 tokens but 3 positions");
    b = f.good();
    b.tokens.assign(9, 1), b.positions.assign(9, 0), b.seq_index.assign(9, 0);
    expect_error(f.paged, b, "9 tokens, but a step holds 1 to 8");
    expect_error(f.paged, StepBatch{}, "0 tokens");
    // A rejected batch leaves the model usable.
    EXPECT_EQ(f.paged.run(f.good()).size(), 2u * 512);
}

TEST(PagedForward, RejectsImpossibleOptions) {
    model::Model m(config_of("tiny"), backend::get_backend("cpu"), DType::F32, 1, 1);
    try {
        PagedForward p(m.weights(), {.pages = {4, 16}, .kv_dtype = DType::BF16});
        FAIL();
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("kv cache dtype bf16"), std::string::npos) << e.what();
    }
    try {
        PagedForward p(m.weights(), {.pages = {0, 16}});
        FAIL();
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("pages.n_pages (0)"), std::string::npos) << e.what();
    }
}

// ---- a backend that lacks the kernels --------------------------------------------------------

// Host memory and nothing else: it says it lacks two inference kernels, and no kernel of it may
// run (the refusal comes before any).
class LackingBackend final : public backend::HostMemoryBackend {
   public:
    std::string_view name() const override { return "lacking"; }
    bool supports(DType dtype) const override { return dtype == DType::F32; }
    std::vector<std::string_view> missing_kernels() const override {
        return {"paged_kv_write", "paged_attention_forward"};
    }
#define TANDEM_UNREACHABLE(signature)                           \
    void signature override {                                   \
        ADD_FAILURE() << "a kernel of the lacking backend ran"; \
    }
    TANDEM_UNREACHABLE(embedding_forward(Tensor, Tensor, Tensor, Tensor, int64_t))
    TANDEM_UNREACHABLE(embedding_backward(Tensor, Tensor, Tensor, Tensor))
    TANDEM_UNREACHABLE(layer_norm_forward(Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, float))
    TANDEM_UNREACHABLE(layer_norm_backward(Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor,
                                           Tensor))
    TANDEM_UNREACHABLE(rms_norm_forward(Tensor, Tensor, Tensor, Tensor, float))
    TANDEM_UNREACHABLE(rms_norm_backward(Tensor, Tensor, Tensor, Tensor, Tensor, Tensor))
    TANDEM_UNREACHABLE(matmul(Tensor, Tensor, Tensor, Tensor, bool, bool, bool))
    TANDEM_UNREACHABLE(bias_backward(Tensor, Tensor))
    TANDEM_UNREACHABLE(gelu_forward(Tensor, Tensor))
    TANDEM_UNREACHABLE(gelu_backward(Tensor, Tensor, Tensor))
    TANDEM_UNREACHABLE(swiglu_forward(Tensor, Tensor))
    TANDEM_UNREACHABLE(swiglu_backward(Tensor, Tensor, Tensor))
    TANDEM_UNREACHABLE(qk_norm_forward(Tensor, Tensor, Tensor, Tensor, Tensor, int64_t, int64_t,
                                       float))
    TANDEM_UNREACHABLE(qk_norm_backward(Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor,
                                        Tensor, int64_t, int64_t))
    TANDEM_UNREACHABLE(rope_forward(Tensor, int64_t, int64_t, const backend::RopeParams&, int64_t))
    TANDEM_UNREACHABLE(rope_backward(Tensor, int64_t, int64_t, const backend::RopeParams&, int64_t))
    TANDEM_UNREACHABLE(attention_forward(Tensor, Tensor, Tensor, int64_t, int64_t))
    TANDEM_UNREACHABLE(attention_backward(Tensor, Tensor, Tensor, Tensor, Tensor, int64_t, int64_t))
    TANDEM_UNREACHABLE(embedding_at_forward(Tensor, Tensor, Tensor, Tensor, Tensor))
    TANDEM_UNREACHABLE(rope_at_forward(Tensor, Tensor, int64_t, int64_t,
                                       const backend::RopeParams&))
    TANDEM_UNREACHABLE(paged_kv_write(Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, int64_t,
                                      int64_t))
    TANDEM_UNREACHABLE(paged_attention_forward(Tensor, Tensor, Tensor, Tensor, Tensor, Tensor,
                                               Tensor, int64_t, int64_t))
    TANDEM_UNREACHABLE(matmul_weights(Tensor, Tensor, Tensor, Tensor, bool))
    TANDEM_UNREACHABLE(add(Tensor, Tensor, Tensor))
    TANDEM_UNREACHABLE(cross_entropy_forward(Tensor, Tensor, Tensor, Tensor, int32_t))
    TANDEM_UNREACHABLE(cross_entropy_backward(Tensor, Tensor, Tensor, Tensor, Tensor, float, int32_t))
    TANDEM_UNREACHABLE(scale(Tensor, float))
    TANDEM_UNREACHABLE(adamw_update(Tensor, Tensor, Tensor, Tensor, const backend::AdamWParams&))
#undef TANDEM_UNREACHABLE
    double sum(Tensor) override {
        ADD_FAILURE() << "sum ran";
        return 0;
    }
    double sum_squares(Tensor) override {
        ADD_FAILURE() << "sum_squares ran";
        return 0;
    }
};

TEST(PagedForward, RefusesABackendThatLacksAnInferenceKernel) {
    LackingBackend lacking;
    model::Weights weights(config_of("tiny"), lacking, DType::F32);
    try {
        PagedForward p(weights, {.pages = {4, 16}});
        FAIL() << "a backend without paged attention was accepted";
    } catch (const Error& e) {
        const std::string msg = e.what();
        EXPECT_NE(msg.find("lacking backend"), std::string::npos) << msg;
        EXPECT_NE(msg.find("paged_kv_write, paged_attention_forward"), std::string::npos) << msg;
    }
}

}  // namespace
}  // namespace tandem::infer

// The quality of quantised weights on a trained model: the tiny e2e model (f32) scores a text it
// never saw (Debian's fortunes "humorists", not among its training files) with `tandem perplexity`
// as trained, with --quant q8_0 and with --quant q4_0. Issue #15 asks q8_0 to stay within 1% of
// f32's perplexity and q4_0 within 5%. Which tensors were really quantised is checked too:
// storage_dtype_rule keeps rows that are not whole blocks of 32 in f16.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <regex>

#include "backend/registry.h"
#include "core/quant.h"
#include "e2e_util.h"
#include "infer/model_source.h"

namespace tandem::testing {
namespace {

namespace fs = std::filesystem;

const char* kHeldOut = "/usr/share/games/fortunes/humorists";

class QuantQuality : public ::testing::Test {
protected:
    static void SetUpTestSuite() {
        dir_ = make_scratch_dir("quant_quality");
        const std::string failed = train_tiny_model(dir_);
        ASSERT_EQ(failed, "");
    }
    static void TearDownTestSuite() { fs::remove_all(dir_); }

    static std::string dir_;
};
std::string QuantQuality::dir_;

// `tandem perplexity` of the run in `dir` on the held-out text; prints its line.
double perplexity_of(const std::string& dir, const std::string& quant) {
    const RunResult r = run_tandem("perplexity --model " + dir + "/run --text " +
                                   kHeldOut + (quant.empty() ? "" : " --quant " + quant));
    EXPECT_EQ(r.exit_code, 0) << quant << ": " << r.err;
    std::smatch m;
    EXPECT_TRUE(std::regex_search(r.out, m, std::regex("perplexity ([0-9.]+)"))) << r.out;
    std::printf("  %-5s %s", quant.empty() ? "f32" : quant.c_str(), r.out.c_str());
    return m.empty() ? NAN : std::stod(m[1].str());
}

TEST_F(QuantQuality, EveryMatrixIsQuantisedAtLoad) {
    // d_model 64, d_ffn 192, head_dim 16: every matrix row is whole blocks of 32, so no tensor
    // falls back to f16; the 1-D norms stay f32.
    for (DType quant : {DType::Q8_0, DType::Q4_0}) {
        const infer::LoadedModel m = infer::load_model(dir_ + "/run", backend::get_backend("cpu"), quant);
        int n_quantised = 0;
        for (const model::ParamEntry& e : m.weights->layout().entries()) {
            const DType got = m.weights->dtype_of(e.name);
            if (e.shape.ndim == 1) {
                EXPECT_EQ(got, DType::F32) << e.name;
                continue;
            }
            EXPECT_EQ(e.shape[-1] % 32, 0) << e.name;
            EXPECT_EQ(got, quant) << e.name << " is " << dtype_name(got);
            n_quantised += got == quant;
        }
        // 2 layers x 7 products (q, k, v, o, gate, up, down), the embedding and the LM head.
        EXPECT_EQ(n_quantised, 16) << dtype_name(quant);
        std::printf("  %s: %d matrices stored as %s\n", dtype_name(quant).data(), n_quantised,
                    dtype_name(quant).data());
    }
}

TEST_F(QuantQuality, QuantisedPerplexityOnHeldOutTextStaysWithinTheIssuesBounds) {
    const auto& corpus = tiny_model_corpus();
    ASSERT_EQ(std::find(corpus.begin(), corpus.end(), kHeldOut), corpus.end());
    ASSERT_TRUE(fs::exists(kHeldOut)) << kHeldOut << " is missing: run scripts/setup (fortunes)";
    const double f32 = perplexity_of(dir_, ""), q8 = perplexity_of(dir_, "q8_0"),
                 q4 = perplexity_of(dir_, "q4_0");
    // The model learned something: far below the 512 of a uniform guess.
    EXPECT_LT(f32, 200.0);
    std::printf("  q8_0 / f32 = %.5f, q4_0 / f32 = %.5f\n", q8 / f32, q4 / f32);
    EXPECT_LE(std::abs(q8 / f32 - 1), 0.01) << "q8_0 " << q8 << " vs f32 " << f32;
    EXPECT_LE(std::abs(q4 / f32 - 1), 0.05) << "q4_0 " << q4 << " vs f32 " << f32;
    // Quantisation loses information: it should not score as exactly the f32 model does.
    EXPECT_NE(q4, f32);
}

}  // namespace
}  // namespace tandem::testing

// PagedForward: the StepModel that runs a model's weights over one step of many sequences with
// their keys and values in a paged cache. It owns the cache (every layer's k and v pages) and a
// scratch arena sized for the largest step; the weights stay their owner's, in whatever storage
// dtypes they have (products go through model::linear_forward). Which pages a sequence holds is
// the caller's business (the engine's page pool): a step only says so in its page table.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "backend/buffer.h"
#include "infer/step_model.h"
#include "model/activations.h"
#include "model/weights.h"

namespace tandem::infer {

struct PagedForwardOptions {
    int64_t max_tokens_per_step = 256;  // N at most: rows of the scratch arena
    PageGeometry pages;                 // the pool: n_pages pages of page_size positions
    // The cache's dtype: f32 or f16 (f64 too when the weights are all f64, on reference).
    DType kv_dtype = DType::F32;
    // Logit rows computed per pass of the LM head: the scratch holds [rows, V] (V = 151,936 makes
    // 64 rows 39 MB in f32), and more logit rows run as several passes.
    int64_t logit_rows_per_pass = 64;
};

class PagedForward final : public StepModel {
public:
    // Throws Error, naming the culprit: a backend that lacks one of the inference kernels
    // (Backend::missing_kernels), one that does not compute in the activations' dtype (f64 when
    // the weights are all f64, else f32), a kv dtype other than f32/f16, or empty sizes.
    PagedForward(const model::Weights& weights, const PagedForwardOptions& options);

    int64_t vocab_size() const override;
    int64_t max_positions() const override;
    int64_t max_tokens_per_step() const override { return options_.max_tokens_per_step; }
    PageGeometry pages() const override { return options_.pages; }
    // Validates the batch (Error naming the row and the field), then runs it: every row's keys
    // and values go to its page slot, and the logits of batch.logit_rows come back,
    // [logit_rows.size(), V] row-major, valid until the next call.
    std::span<const float> run(const StepBatch& batch) override;

    // The activations' dtype for these weights: f64 when they are all f64 (reference checks),
    // else f32 (whatever their storage dtypes).
    static DType compute_dtype_for(const model::Weights& weights);

    const model::Weights& weights() const { return weights_; }
    DType compute_dtype() const { return dtype_; }
    DType kv_dtype() const { return options_.kv_dtype; }
    size_t cache_bytes() const { return cache_.bytes(); }
    size_t scratch_bytes() const { return scratch_.bytes(); }

private:
    // The per-step tensors, laid out for N rows (and R logit rows) from the scratch arena's base.
    struct Step {
        Tensor tokens, positions, seq_index;  // i32 [N]
        model::BlockActivations block;        // x and out are one [N, C] residual
        Tensor proj;                          // [N, C]
        Tensor head_x, head_in;               // [R, C] the rows whose logits are wanted
        model::NormSaved head_norm;           // [R]
        Tensor logits;                        // [R, V]
    };
    size_t lay_out(Step& step, void* base, int64_t N, int64_t R) const;
    void validate(const StepBatch& batch) const;
    Tensor page_table_on_device(const StepBatch& batch);
    void logits_of(const Step& step, std::span<const int32_t> rows, float* host);

    const model::Weights& weights_;
    backend::Backend& be_;
    PagedForwardOptions options_;
    DType dtype_;
    backend::Buffer cache_, scratch_, page_table_;
    std::vector<Tensor> k_pages_, v_pages_;  // per layer [n_pages, page_size, Hkv D]
    std::vector<float> host_logits_;
    std::vector<char> staged_;  // f64 logits on their way to f32
};

}  // namespace tandem::infer

// Matrix products through cuBLASLt, and the bias gradient as a deterministic column sum.
// Row-major out[M, N] = op(a)[M, K] @ op(b)[K, N] is computed as the column-major product
// out^T[N, M] = op(b)^T @ op(a)^T, so cuBLAS's "A" is b and its "B" is a, with no copies.
// fp32 uses CUBLAS_COMPUTE_32F (true fp32, never TF32: the fp32 tolerance is 1e-5); bf16 uses
// fp32 accumulation. The bias rides in the epilogue, accumulation is beta = 1, batches are
// strided. When cuBLASLt offers no algorithm (odd leading dimensions), cublasGemmStridedBatchedEx
// and a bias kernel take over.
#include <initializer_list>
#include <map>
#include <mutex>
#include <tuple>

#include "backend/cuda/common.cuh"

namespace tandem::backend::cuda {

namespace {

template <typename T>
__global__ void add_bias_kernel(T* out, const T* bias, int64_t rows, int64_t N) {
    for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < rows * N;
         i += int64_t(gridDim.x) * blockDim.x)
        out[i] = from_f32<T>(to_f32(out[i]) + to_f32(bias[i % N]));
}

using Dims = checks::MatmulDims;

cudaDataType_t cuda_type(DType dtype) { return dtype == DType::BF16 ? CUDA_R_16BF : CUDA_R_32F; }

// The algorithm cuBLASLt's heuristic picks for one problem, looked up once: the same choice on
// every call keeps results reproducible and skips the heuristic's cost.
using PlanKey =
    std::tuple<int, bool, bool, bool, bool, int64_t, int64_t, int64_t, int64_t, uint32_t>;
struct Plan {
    bool has_algo = false;
    cublasLtMatmulAlgo_t algo{};
};

class LtProblem {
public:
    LtProblem(DType dtype, bool trans_a, bool trans_b, const Dims& d, bool has_bias) {
        const cudaDataType_t type = cuda_type(dtype);
        TANDEM_CUDA_CHECK(cublasLtMatmulDescCreate(&op_, CUBLAS_COMPUTE_32F, CUDA_R_32F));
        // cuBLAS "A" = b (op(A) is [N, K]), "B" = a (op(B) is [K, M]), D is [N, M], all
        // column-major.
        const cublasOperation_t op_A = trans_b ? CUBLAS_OP_T : CUBLAS_OP_N;
        const cublasOperation_t op_B = trans_a ? CUBLAS_OP_T : CUBLAS_OP_N;
        TANDEM_CUDA_CHECK(cublasLtMatmulDescSetAttribute(op_, CUBLASLT_MATMUL_DESC_TRANSA, &op_A,
                                                         sizeof(op_A)));
        TANDEM_CUDA_CHECK(cublasLtMatmulDescSetAttribute(op_, CUBLASLT_MATMUL_DESC_TRANSB, &op_B,
                                                         sizeof(op_B)));
        if (has_bias) {
            const cublasLtEpilogue_t epilogue = CUBLASLT_EPILOGUE_BIAS;
            TANDEM_CUDA_CHECK(cublasLtMatmulDescSetAttribute(
                op_, CUBLASLT_MATMUL_DESC_EPILOGUE, &epilogue, sizeof(epilogue)));
        }
        // Stored shapes (rows, cols, leading dimension) in column-major terms.
        const uint64_t A_rows = trans_b ? d.K : d.N, A_cols = trans_b ? d.N : d.K;
        const uint64_t B_rows = trans_a ? d.M : d.K, B_cols = trans_a ? d.K : d.M;
        make_layout(&A_, type, A_rows, A_cols, d.S, d.N * d.K);
        make_layout(&B_, type, B_rows, B_cols, d.S, d.M * d.K);
        make_layout(&D_, type, d.N, d.M, d.S, d.M * d.N);
    }
    ~LtProblem() {
        if (A_) cublasLtMatrixLayoutDestroy(A_);
        if (B_) cublasLtMatrixLayoutDestroy(B_);
        if (D_) cublasLtMatrixLayoutDestroy(D_);
        if (op_) cublasLtMatmulDescDestroy(op_);
    }
    cublasLtMatmulDesc_t op_ = nullptr;
    cublasLtMatrixLayout_t A_ = nullptr, B_ = nullptr, D_ = nullptr;

private:
    static void make_layout(cublasLtMatrixLayout_t* layout, cudaDataType_t type, uint64_t rows,
                            uint64_t cols, int64_t S, int64_t stride) {
        TANDEM_CUDA_CHECK(cublasLtMatrixLayoutCreate(layout, type, rows, cols, int64_t(rows)));
        if (S > 1) {
            const int32_t count = int32_t(S);
            TANDEM_CUDA_CHECK(cublasLtMatrixLayoutSetAttribute(
                *layout, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, &count, sizeof(count)));
            TANDEM_CUDA_CHECK(cublasLtMatrixLayoutSetAttribute(
                *layout, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET, &stride, sizeof(stride)));
        }
    }
};

// The largest power of two (at most 256) dividing every pointer: views into arenas may start
// anywhere, and cuBLASLt's kernels assume the alignment they were chosen for.
uint32_t common_alignment(std::initializer_list<const void*> ptrs) {
    uint32_t alignment = 256;
    for (const void* p : ptrs) {
        const uintptr_t u = reinterpret_cast<uintptr_t>(p);
        while (u % alignment != 0) alignment /= 2;
    }
    return alignment;
}

Plan find_plan(Context& ctx, const LtProblem& p, const PlanKey& key) {
    static std::mutex mutex;
    static std::map<PlanKey, Plan> plans;
    std::lock_guard lock(mutex);
    auto it = plans.find(key);
    if (it != plans.end()) return it->second;
    cublasLtMatmulPreference_t pref;
    TANDEM_CUDA_CHECK(cublasLtMatmulPreferenceCreate(&pref));
    TANDEM_CUDA_CHECK(cublasLtMatmulPreferenceSetAttribute(
        pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ctx.lt_workspace_bytes,
        sizeof(ctx.lt_workspace_bytes)));
    const uint32_t alignment = std::get<9>(key);
    for (auto attribute : {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES,
                           CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES,
                           CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES,
                           CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES})
        TANDEM_CUDA_CHECK(
            cublasLtMatmulPreferenceSetAttribute(pref, attribute, &alignment, sizeof(alignment)));
    cublasLtMatmulHeuristicResult_t result{};
    int n_results = 0;
    const cublasStatus_t status = cublasLtMatmulAlgoGetHeuristic(
        ctx.lt, p.op_, p.A_, p.B_, p.D_, p.D_, pref, 1, &result, &n_results);
    cublasLtMatmulPreferenceDestroy(pref);
    Plan plan;
    if (status == CUBLAS_STATUS_SUCCESS && n_results > 0) {
        plan.has_algo = true;
        plan.algo = result.algo;
    }
    plans.emplace(key, plan);
    return plan;
}

// The fallback path: legacy cuBLAS (pedantic math mode: no TF32), any leading dimension.
void gemm_fallback(Context& ctx, Tensor out, Tensor a, Tensor b, bool trans_a, bool trans_b,
                   bool accumulate, const Dims& d) {
    const cudaDataType_t type = cuda_type(out.dtype);
    const float alpha = 1.0f, beta = accumulate ? 1.0f : 0.0f;
    TANDEM_CUDA_CHECK(cublasGemmStridedBatchedEx(
        ctx.blas, trans_b ? CUBLAS_OP_T : CUBLAS_OP_N, trans_a ? CUBLAS_OP_T : CUBLAS_OP_N,
        int(d.N), int(d.M), int(d.K), &alpha, b.data, type, int(trans_b ? d.K : d.N), d.N * d.K,
        a.data, type, int(trans_a ? d.M : d.K), d.M * d.K, &beta, out.data, type, int(d.N),
        d.M * d.N, int(d.S), CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
}

}  // namespace

void matmul(Context& ctx, Tensor out, Tensor a, Tensor b, Tensor bias, bool trans_a, bool trans_b,
            bool accumulate) {
    const Dims d = checks::matmul(out, a, b, bias, trans_a, trans_b);
    expect_compute_dtype(out);
    if (d.S * d.M * d.N == 0) return;
    if (d.K == 0) {  // an empty sum: out = bias (or unchanged when accumulating)
        if (!accumulate) TANDEM_CUDA_CHECK(cudaMemsetAsync(out.data, 0, out.bytes(), ctx.stream));
    } else {
        const bool has_bias = !bias.empty();
        const LtProblem problem(out.dtype, trans_a, trans_b, d, has_bias);
        const uint32_t alignment = common_alignment({out.data, a.data, b.data, bias.data});
        const PlanKey key{int(out.dtype), trans_a, trans_b, has_bias, accumulate,
                          d.S,            d.M,     d.N,     d.K,      alignment};
        const Plan plan = find_plan(ctx, problem, key);
        if (plan.has_algo) {
            if (has_bias) {
                const void* bias_ptr = bias.data;
                TANDEM_CUDA_CHECK(cublasLtMatmulDescSetAttribute(
                    problem.op_, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias_ptr, sizeof(bias_ptr)));
            }
            const float alpha = 1.0f, beta = accumulate ? 1.0f : 0.0f;
            const cublasStatus_t status = cublasLtMatmul(
                ctx.lt, problem.op_, &alpha, b.data, problem.A_, a.data, problem.B_, &beta,
                out.data, problem.D_, out.data, problem.D_, &plan.algo, ctx.lt_workspace,
                ctx.lt_workspace_bytes, ctx.stream);
            // An algorithm the heuristic offered may still refuse the call: take the fallback.
            if (status != CUBLAS_STATUS_NOT_SUPPORTED) {
                check_status(status, "cublasLtMatmul", __FILE__, __LINE__);
                return;
            }
        }
        gemm_fallback(ctx, out, a, b, trans_a, trans_b, accumulate, d);
    }
    if (!bias.empty())
        dispatch(out.dtype, [&](auto tag) {
            using T = decltype(tag);
            add_bias_kernel<T><<<n_blocks_for(d.M * d.N, 256, 4096), 256, 0, ctx.stream>>>(
                out.as<T>(), bias.as<T>(), d.M, d.N);
        });
    TANDEM_CUDA_CHECK_LAUNCH();
}

namespace {
template <typename T>
struct DoutValue {
    const T* dout;
    int64_t N;
    __device__ float operator()(int64_t m, int64_t n) const { return to_f32(dout[m * N + n]); }
};
}  // namespace

void bias_backward(Context& ctx, Tensor dbias, Tensor dout) {
    checks::bias_backward(dbias, dout);
    expect_compute_dtype(dout);
    const int64_t N = dout.cols(), M = dout.rows();
    if (M == 0 || N == 0) return;
    dispatch(dout.dtype, [&](auto tag) {
        using T = decltype(tag);
        column_sum_accumulate(ctx, dbias.as<T>(), DoutValue<T>{dout.as<T>(), N}, M, N);
    });
}

}  // namespace tandem::backend::cuda

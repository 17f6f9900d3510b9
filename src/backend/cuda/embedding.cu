// Token and position embeddings. Backward scatters into dwte without atomics: the block of the
// first row holding a token sums every row with that token in row order, so the result is the
// same bit for bit on every run.
#include "backend/cuda/common.cuh"

namespace tandem::backend::cuda {

namespace {

template <typename T>
__global__ void embedding_forward_kernel(T* out, const int32_t* tokens, const T* wte, const T* wpe,
                                         int64_t T_len, int64_t C, int64_t pos_offset) {
    const int64_t n = blockIdx.x;  // one block per (b, t)
    const int64_t t = n % T_len;
    const T* w = wte + int64_t(tokens[n]) * C;
    const T* p = wpe ? wpe + (pos_offset + t) * C : nullptr;
    for (int64_t c = threadIdx.x; c < C; c += blockDim.x) {
        float x = to_f32(w[c]);
        if (p) x += to_f32(p[c]);
        out[n * C + c] = from_f32<T>(x);
    }
}

// One block per row n. If n is the first row with its token, the block lists the rows n' >= n
// with that token, in order, in shared memory (a ballot per warp, the warps' counts added up by
// thread 0), then adds their dout rows column by column and writes dwte[token] once. A token
// with more than about kRowList rows is flushed in several parts (each rounded to T once).
// Every other block returns after one scan of the tokens before it.
constexpr int kRowList = 4096;

template <typename T>
__global__ void embedding_backward_wte_kernel(T* dwte, const T* dout, const int32_t* tokens,
                                              int64_t N, int64_t C) {
    __shared__ int is_first, n_listed;
    __shared__ int warp_base[32];
    __shared__ int32_t list[kRowList];
    const int64_t n = blockIdx.x;
    const int32_t token = tokens[n];
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, n_warps = blockDim.x / 32;
    if (threadIdx.x == 0) {
        is_first = 1;
        n_listed = 0;
    }
    __syncthreads();
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x)
        if (tokens[i] == token) is_first = 0;  // benign race: every writer stores 0
    __syncthreads();
    if (!is_first) return;
    T* w = dwte + int64_t(token) * C;
    for (int64_t i0 = n; i0 < N; i0 += blockDim.x) {
        const int64_t i = i0 + threadIdx.x;
        const bool match = i < N && tokens[i] == token;
        const unsigned ballot = __ballot_sync(0xffffffffu, match);
        if (lane == 0) warp_base[warp] = __popc(ballot);
        __syncthreads();
        if (threadIdx.x == 0) {  // counts -> offsets, in warp order
            int offset = n_listed;
            for (int k = 0; k < n_warps; ++k) {
                const int count = warp_base[k];
                warp_base[k] = offset;
                offset += count;
            }
            n_listed = offset;
        }
        __syncthreads();
        if (match) list[warp_base[warp] + __popc(ballot & ((1u << lane) - 1u))] = int32_t(i);
        const int n_rows = n_listed;
        __syncthreads();  // the list is complete
        if (i0 + blockDim.x >= N || n_rows + int(blockDim.x) > kRowList) {
            for (int64_t c = threadIdx.x; c < C; c += blockDim.x) {
                float acc = 0.0f;
                for (int k = 0; k < n_rows; ++k) acc += to_f32(dout[int64_t(list[k]) * C + c]);
                w[c] = from_f32<T>(to_f32(w[c]) + acc);
            }
            __syncthreads();
            if (threadIdx.x == 0) n_listed = 0;
            __syncthreads();
        }
    }
}

// dwpe[t, :] += sum_b dout[b, t, :], one block per t, b in order.
template <typename T>
__global__ void embedding_backward_wpe_kernel(T* dwpe, const T* dout, int64_t B, int64_t T_len,
                                              int64_t C) {
    const int64_t t = blockIdx.x;
    for (int64_t c = threadIdx.x; c < C; c += blockDim.x) {
        float acc = 0.0f;
        for (int64_t b = 0; b < B; ++b) acc += to_f32(dout[(b * T_len + t) * C + c]);
        dwpe[t * C + c] = from_f32<T>(to_f32(dwpe[t * C + c]) + acc);
    }
}

}  // namespace

void embedding_forward(Context& ctx, Tensor out, Tensor tokens, Tensor wte, Tensor wpe,
                       int64_t pos_offset) {
    checks::embedding_forward(out, tokens, wte, wpe, pos_offset);
    expect_compute_dtype(out);
    const int64_t B = out.size(0), T_len = out.size(1), C = out.size(2);
    if (B * T_len == 0) return;
    dispatch(out.dtype, [&](auto tag) {
        using T = decltype(tag);
        embedding_forward_kernel<T><<<unsigned(B * T_len), 256, 0, ctx.stream>>>(
            out.as<T>(), tokens.as<int32_t>(), wte.as<T>(), wpe.empty() ? nullptr : wpe.as<T>(),
            T_len, C, pos_offset);
    });
    TANDEM_CUDA_CHECK_LAUNCH();
}

void embedding_backward(Context& ctx, Tensor dwte, Tensor dwpe, Tensor dout, Tensor tokens) {
    checks::embedding_backward(dwte, dwpe, dout, tokens);
    expect_compute_dtype(dout);
    const int64_t B = dout.size(0), T_len = dout.size(1), C = dout.size(2);
    if (B * T_len == 0) return;
    dispatch(dout.dtype, [&](auto tag) {
        using T = decltype(tag);
        embedding_backward_wte_kernel<T><<<unsigned(B * T_len), 256, 0, ctx.stream>>>(
            dwte.as<T>(), dout.as<T>(), tokens.as<int32_t>(), B * T_len, C);
        if (!dwpe.empty())
            embedding_backward_wpe_kernel<T><<<unsigned(T_len), 256, 0, ctx.stream>>>(
                dwpe.as<T>(), dout.as<T>(), B, T_len, C);
    });
    TANDEM_CUDA_CHECK_LAUNCH();
}

}  // namespace tandem::backend::cuda

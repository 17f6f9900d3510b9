// Rotary embeddings and causal grouped-query attention that never stores the T x T scores.
// (The paged-cache inference kernels are not written for CUDA yet: see missing_kernels.)
// Forward is flash-style: a block owns 32 query rows of one (batch, head), walks the key/value
// tiles of 32 positions up to the diagonal through shared memory, and keeps an online softmax
// (running max m and sum l, the accumulator rescaled when m grows), saving lse = m + log l.
// Backward recomputes the probabilities from q, k and lse, as in FlashAttention-2:
//   p = exp(q.k / sqrt(D) - lse), dp = dout.v, ds = p (dp - delta), delta = dout.out;
//   dv_s = sum_t p dout_t, dk_s = sum_t ds q_t / sqrt(D), dq_t = sum_s ds k_s / sqrt(D).
// dk/dv and dq are two kernels (each block owns its outputs: no atomics, reproducible bits).
// Layout inside every kernel: 4 threads per row, thread g of a row owns dimensions g, g + 4, ...,
// so the 4 partial dot products meet through two shuffles and shared-memory reads of a row are
// 4 distinct addresses per warp (no bank conflicts). Dimensions are padded with zeros to 4 * NI.
#include <cmath>
#include <type_traits>

#include "backend/cuda/common.cuh"

namespace tandem::backend::cuda {

namespace {

constexpr int kRows = 32;                 // query rows (or key rows) per block
constexpr int kGroup = 4;                 // threads per row
constexpr int kThreads = kRows * kGroup;  // 128

struct Geometry {
    int T, H, Hkv, D, W;  // W = (H + 2 Hkv) D, the width of one qkv position
    __device__ int64_t q(int b, int t, int h) const { return (int64_t(b) * T + t) * W + h * D; }
    __device__ int64_t k(int b, int t, int g) const {
        return (int64_t(b) * T + t) * W + (H + g) * D;
    }
    __device__ int64_t v(int b, int t, int g) const {
        return (int64_t(b) * T + t) * W + (H + Hkv + g) * D;
    }
    __device__ int64_t o(int b, int t, int h) const {
        return (int64_t(b) * T + t) * H * D + int64_t(h) * D;
    }
    __device__ int64_t stat(int b, int h, int t) const { return (int64_t(b) * H + h) * T + t; }
};

__device__ __forceinline__ float group_sum(float x) {
    x += __shfl_xor_sync(0xffffffffu, x, 1);
    return x + __shfl_xor_sync(0xffffffffu, x, 2);
}

// Loads rows [row0, row0 + 32) of one head (offset fn) into tile[32][DP] as f32, zero-padded.
template <typename T, int DP, typename Offset>
__device__ void load_tile(float (*tile)[DP], const T* src, int row0, int T_len, int D,
                          Offset offset) {
    for (int e = threadIdx.x; e < kRows * DP; e += kThreads) {
        const int j = e / DP, d = e % DP, t = row0 + j;
        tile[j][d] = (t < T_len && d < D) ? to_f32(src[offset(t) + d]) : 0.0f;
    }
}

// Where the forward kernel finds a head: element (b, t, head) of an operand is at
// base + b * batch + t * row + head * D. Training reads q, k and v out of qkv; inference reads
// q out of qkv and k, v out of the caches.
struct Strides {
    int64_t batch, row;
};
struct ForwardArgs {
    int Tq, n_keys, pos, H, Hkv, D;  // query t (at position pos + t) sees keys s <= pos + t
    Strides q, kv, o;
    __device__ int64_t at(const Strides& x, int b, int t, int head) const {
        return int64_t(b) * x.batch + int64_t(t) * x.row + int64_t(head) * D;
    }
};

// lse may be null (inference keeps no statistics).
template <typename T, int NI>
__global__ void __launch_bounds__(kThreads)
    attention_forward_kernel(T* out, float* lse, const T* q_base, const T* k_base,
                             const T* v_base, ForwardArgs a, float scale) {
    constexpr int DP = kGroup * NI;
    __shared__ float ks[kRows][DP], vs[kRows][DP];
    const int b = blockIdx.z, h = blockIdx.y, g_kv = h / (a.H / a.Hkv);
    const int row = threadIdx.x / kGroup, grp = threadIdx.x % kGroup;
    const int t0 = blockIdx.x * kRows, t = t0 + row;
    const bool live = t < a.Tq;
    float q[NI], acc[NI];
#pragma unroll
    for (int i = 0; i < NI; ++i) {
        const int d = grp + kGroup * i;
        q[i] = live && d < a.D ? to_f32(q_base[a.at(a.q, b, t, h) + d]) * scale : 0.0f;
        acc[i] = 0.0f;
    }
    float m = -INFINITY, l = 0.0f;
    const int s_end = min(a.n_keys, a.pos + t0 + kRows);  // keys past the last row's position
    for (int s0 = 0; s0 < s_end; s0 += kRows) {
        __syncthreads();  // the previous tile is no longer read
        load_tile<T, DP>(ks, k_base, s0, a.n_keys, a.D, [&](int s) { return a.at(a.kv, b, s, g_kv); });
        load_tile<T, DP>(vs, v_base, s0, a.n_keys, a.D, [&](int s) { return a.at(a.kv, b, s, g_kv); });
        __syncthreads();
        float score[kRows];
        float tile_max = -INFINITY;
#pragma unroll
        for (int j = 0; j < kRows; ++j) {
            float part = 0.0f;
#pragma unroll
            for (int i = 0; i < NI; ++i) part += q[i] * ks[j][grp + kGroup * i];
            part = group_sum(part);
            score[j] = live && s0 + j <= a.pos + t ? part : -INFINITY;
            tile_max = fmaxf(tile_max, score[j]);
        }
        const float m_new = fmaxf(m, tile_max);
        if (m_new == -INFINITY) continue;  // nothing visible yet (or a padding row)
        const float correction = expf(m - m_new);  // 0 on the first visible tile
        l *= correction;
#pragma unroll
        for (int i = 0; i < NI; ++i) acc[i] *= correction;
#pragma unroll
        for (int j = 0; j < kRows; ++j) {
            const float p = expf(score[j] - m_new);
            l += p;
#pragma unroll
            for (int i = 0; i < NI; ++i) acc[i] += p * vs[j][grp + kGroup * i];
        }
        m = m_new;
    }
    if (!live) return;
    const float inv_l = 1.0f / l;
#pragma unroll
    for (int i = 0; i < NI; ++i) {
        const int d = grp + kGroup * i;
        if (d < a.D) out[a.at(a.o, b, t, h) + d] = from_f32<T>(acc[i] * inv_l);
    }
    if (lse && grp == 0) lse[(int64_t(b) * a.H + h) * a.Tq + t] = m + logf(l);
}

// delta[b, h, t] = dout . out, one warp per row.
template <typename T>
__global__ void attention_delta_kernel(float* delta, const T* dout, const T* out, int64_t n_rows,
                                       Geometry geo) {
    const int64_t r = int64_t(blockIdx.x) * (blockDim.x / 32) + threadIdx.x / 32;
    if (r >= n_rows) return;
    // r enumerates (b, t, h) in the memory order of out.
    const int h = int(r % geo.H);
    const int64_t bt = r / geo.H;
    const int b = int(bt / geo.T), t = int(bt % geo.T);
    const int64_t base = r * geo.D;
    float acc = 0.0f;
    for (int d = threadIdx.x % 32; d < geo.D; d += 32)
        acc += to_f32(dout[base + d]) * to_f32(out[base + d]);
    acc = warp_sum(acc);
    if (threadIdx.x % 32 == 0) delta[geo.stat(b, h, t)] = acc;
}

// dk and dv of 32 key positions of one (batch, kv head), summed over the query heads that share
// it and over the query rows at or after each key.
template <typename T, int NI>
__global__ void __launch_bounds__(kThreads)
    attention_backward_dkv_kernel(T* dqkv, const T* dout, const T* qkv, const float* lse,
                                  const float* delta, Geometry geo, float scale) {
    constexpr int DP = kGroup * NI;
    __shared__ float qs[kRows][DP], dos[kRows][DP], lse_s[kRows], delta_s[kRows];
    const int b = blockIdx.z, g_kv = blockIdx.y, n_rep = geo.H / geo.Hkv;
    const int row = threadIdx.x / kGroup, grp = threadIdx.x % kGroup;
    const int s_first = blockIdx.x * kRows, s = s_first + row;
    const bool live = s < geo.T;
    float k[NI], v[NI], dk[NI], dv[NI];
#pragma unroll
    for (int i = 0; i < NI; ++i) {
        const int d = grp + kGroup * i;
        k[i] = live && d < geo.D ? to_f32(qkv[geo.k(b, s, g_kv) + d]) : 0.0f;
        v[i] = live && d < geo.D ? to_f32(qkv[geo.v(b, s, g_kv) + d]) : 0.0f;
        dk[i] = dv[i] = 0.0f;
    }
    for (int h = g_kv * n_rep; h < (g_kv + 1) * n_rep; ++h)
        for (int t0 = s_first; t0 < geo.T; t0 += kRows) {
            __syncthreads();
            load_tile<T, DP>(qs, qkv, t0, geo.T, geo.D, [&](int t) { return geo.q(b, t, h); });
            load_tile<T, DP>(dos, dout, t0, geo.T, geo.D, [&](int t) { return geo.o(b, t, h); });
            if (threadIdx.x < kRows) {
                const int t = t0 + threadIdx.x;
                lse_s[threadIdx.x] = t < geo.T ? lse[geo.stat(b, h, t)] : 0.0f;
                delta_s[threadIdx.x] = t < geo.T ? delta[geo.stat(b, h, t)] : 0.0f;
            }
            __syncthreads();
            const int n_valid = min(kRows, geo.T - t0);
            for (int r = 0; r < n_valid; ++r) {
                float part_s = 0.0f, part_dp = 0.0f;
#pragma unroll
                for (int i = 0; i < NI; ++i) {
                    part_s += qs[r][grp + kGroup * i] * k[i];
                    part_dp += dos[r][grp + kGroup * i] * v[i];
                }
                part_s = group_sum(part_s) * scale;
                part_dp = group_sum(part_dp);
                const bool visible = live && t0 + r >= s;
                const float p = visible ? expf(part_s - lse_s[r]) : 0.0f;
                const float ds = p * (part_dp - delta_s[r]);
#pragma unroll
                for (int i = 0; i < NI; ++i) {
                    dv[i] += p * dos[r][grp + kGroup * i];
                    dk[i] += ds * qs[r][grp + kGroup * i];
                }
            }
        }
    if (!live) return;
#pragma unroll
    for (int i = 0; i < NI; ++i) {
        const int d = grp + kGroup * i;
        if (d < geo.D) {
            dqkv[geo.k(b, s, g_kv) + d] = from_f32<T>(dk[i] * scale);
            dqkv[geo.v(b, s, g_kv) + d] = from_f32<T>(dv[i]);
        }
    }
}

// dq of 32 query rows of one (batch, head), over the key tiles up to the diagonal.
template <typename T, int NI>
__global__ void __launch_bounds__(kThreads)
    attention_backward_dq_kernel(T* dqkv, const T* dout, const T* qkv, const float* lse,
                                 const float* delta, Geometry geo, float scale) {
    constexpr int DP = kGroup * NI;
    __shared__ float ks[kRows][DP], vs[kRows][DP];
    const int b = blockIdx.z, h = blockIdx.y, g_kv = h / (geo.H / geo.Hkv);
    const int row = threadIdx.x / kGroup, grp = threadIdx.x % kGroup;
    const int t0 = blockIdx.x * kRows, t = t0 + row;
    const bool live = t < geo.T;
    float q[NI], go[NI], dq[NI];
#pragma unroll
    for (int i = 0; i < NI; ++i) {
        const int d = grp + kGroup * i;
        q[i] = live && d < geo.D ? to_f32(qkv[geo.q(b, t, h) + d]) : 0.0f;
        go[i] = live && d < geo.D ? to_f32(dout[geo.o(b, t, h) + d]) : 0.0f;
        dq[i] = 0.0f;
    }
    const float l = live ? lse[geo.stat(b, h, t)] : 0.0f;
    const float dl = live ? delta[geo.stat(b, h, t)] : 0.0f;
    const int s_end = min(geo.T, t0 + kRows);
    for (int s0 = 0; s0 < s_end; s0 += kRows) {
        __syncthreads();
        load_tile<T, DP>(ks, qkv, s0, geo.T, geo.D, [&](int s) { return geo.k(b, s, g_kv); });
        load_tile<T, DP>(vs, qkv, s0, geo.T, geo.D, [&](int s) { return geo.v(b, s, g_kv); });
        __syncthreads();
#pragma unroll 4
        for (int j = 0; j < kRows; ++j) {
            float part_s = 0.0f, part_dp = 0.0f;
#pragma unroll
            for (int i = 0; i < NI; ++i) {
                part_s += q[i] * ks[j][grp + kGroup * i];
                part_dp += go[i] * vs[j][grp + kGroup * i];
            }
            part_s = group_sum(part_s) * scale;
            part_dp = group_sum(part_dp);
            const bool visible = live && s0 + j <= t;
            const float p = visible ? expf(part_s - l) : 0.0f;
            const float ds = p * (part_dp - dl);
#pragma unroll
            for (int i = 0; i < NI; ++i) dq[i] += ds * ks[j][grp + kGroup * i];
        }
    }
    if (!live) return;
#pragma unroll
    for (int i = 0; i < NI; ++i) {
        const int d = grp + kGroup * i;
        if (d < geo.D) dqkv[geo.q(b, t, h) + d] = from_f32<T>(dq[i] * scale);
    }
}

// Calls fn(std::integral_constant<int, NI>) with the smallest NI such that 4 NI >= D.
template <typename Fn>
void dispatch_head_dim(int D, Fn&& fn) {
    if (D <= 8) return fn(std::integral_constant<int, 2>{});
    if (D <= 16) return fn(std::integral_constant<int, 4>{});
    if (D <= 32) return fn(std::integral_constant<int, 8>{});
    if (D <= 64) return fn(std::integral_constant<int, 16>{});
    if (D <= 128) return fn(std::integral_constant<int, 32>{});
    TANDEM_ASSERT(false, "cuda attention supports head dims up to 128", D);
}

Geometry geometry_of(const Tensor& qkv, int64_t H, int64_t Hkv) {
    const checks::AttentionDims d = checks::qkv_layout(qkv, H, Hkv);
    expect_compute_dtype(qkv);
    TANDEM_ASSERT(d.T < (int64_t(1) << 30), qkv.str());
    return {int(d.T), int(H), int(Hkv), int(d.D), int(d.width())};
}

// rope: one thread per (position, q or k head, i < D/2). Angles in double: at position 10^4 an
// f32 angle would already be off by ~1e-3 rad. The frequency comes from the same
// RopeParams::inv_freq as on the host (passed by value: a few bytes of kernel arguments).
template <typename T>
__global__ void rope_kernel(T* qkv, int64_t n_positions, int T_len, int n_rot_heads, int W, int D,
                            RopeParams params, int64_t pos_offset, float sign) {
    const int half = D / 2;
    const int64_t n = n_positions * n_rot_heads * half;
    for (int64_t idx = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; idx < n;
         idx += int64_t(gridDim.x) * blockDim.x) {
        const int i = int(idx % half);
        const int64_t rest = idx / half;
        const int j = int(rest % n_rot_heads);
        const int64_t p = rest / n_rot_heads;
        const int64_t t = p % T_len;
        const double angle = double(pos_offset + t) * params.inv_freq(i, D);
        double s, c;
        sincos(angle, &s, &c);
        const float cf = float(c), sf = sign * float(s);
        T* x = qkv + p * W + int64_t(j) * D;
        const float x0 = to_f32(x[i]), x1 = to_f32(x[i + half]);
        x[i] = from_f32<T>(x0 * cf - x1 * sf);
        x[i + half] = from_f32<T>(x1 * cf + x0 * sf);
    }
}

}  // namespace

void rope(Context& ctx, Tensor qkv, int64_t H, int64_t Hkv, const RopeParams& params,
          int64_t pos_offset, bool inverse) {
    const Geometry geo = geometry_of(qkv, H, Hkv);
    TANDEM_ASSERT(geo.D % 2 == 0, "rope needs an even head dim", qkv.str(), H, Hkv);
    const int64_t n_positions = qkv.size(0) * geo.T;
    const int64_t n = n_positions * (H + Hkv) * (geo.D / 2);
    if (n == 0) return;
    dispatch(qkv.dtype, [&](auto tag) {
        using T = decltype(tag);
        rope_kernel<T><<<n_blocks_for(n, 256), 256, 0, ctx.stream>>>(
            qkv.as<T>(), n_positions, geo.T, int(H + Hkv), geo.W, geo.D, params, pos_offset,
            inverse ? -1.0f : 1.0f);
    });
    TANDEM_CUDA_CHECK_LAUNCH();
}

void attention_forward(Context& ctx, Tensor out, Tensor lse, Tensor qkv, int64_t H, int64_t Hkv) {
    checks::attention_forward(out, lse, qkv, H, Hkv);
    const Geometry geo = geometry_of(qkv, H, Hkv);
    const int B = int(qkv.size(0));
    if (B == 0 || geo.T == 0) return;
    const float scale = float(1.0 / std::sqrt(double(geo.D)));
    const int64_t W = geo.W, O = int64_t(geo.H) * geo.D;
    const ForwardArgs args{geo.T, geo.T, 0, geo.H, geo.Hkv, geo.D,
                           {geo.T * W, W}, {geo.T * W, W}, {geo.T * O, O}};
    const dim3 grid((geo.T + kRows - 1) / kRows, geo.H, B);
    dispatch(qkv.dtype, [&](auto tag) {
        using T = decltype(tag);
        const T* x = qkv.as<T>();
        dispatch_head_dim(geo.D, [&](auto ni) {
            attention_forward_kernel<T, decltype(ni)::value><<<grid, kThreads, 0, ctx.stream>>>(
                out.as<T>(), lse.as<float>(), x, x + int64_t(H) * geo.D,
                x + int64_t(H + Hkv) * geo.D, args, scale);
        });
    });
    TANDEM_CUDA_CHECK_LAUNCH();
}

void attention_backward(Context& ctx, Tensor dqkv, Tensor dout, Tensor qkv, Tensor out, Tensor lse,
                        int64_t H, int64_t Hkv) {
    checks::attention_backward(dqkv, dout, qkv, out, lse, H, Hkv);
    const Geometry geo = geometry_of(qkv, H, Hkv);
    const int B = int(qkv.size(0));
    if (B == 0 || geo.T == 0) return;
    const float scale = float(1.0 / std::sqrt(double(geo.D)));
    const int64_t n_rows = int64_t(B) * geo.T * geo.H;
    Scratch delta(ctx, size_t(n_rows) * sizeof(float));
    const int n_blocks_q = (geo.T + kRows - 1) / kRows;
    dispatch(qkv.dtype, [&](auto tag) {
        using T = decltype(tag);
        attention_delta_kernel<T><<<unsigned((n_rows + 7) / 8), 256, 0, ctx.stream>>>(
            delta.as<float>(), dout.as<T>(), out.as<T>(), n_rows, geo);
        TANDEM_CUDA_CHECK_LAUNCH();
        dispatch_head_dim(geo.D, [&](auto ni) {
            constexpr int NI = decltype(ni)::value;
            attention_backward_dkv_kernel<T, NI>
                <<<dim3(n_blocks_q, geo.Hkv, B), kThreads, 0, ctx.stream>>>(
                    dqkv.as<T>(), dout.as<T>(), qkv.as<T>(), lse.as<float>(), delta.as<float>(),
                    geo, scale);
            TANDEM_CUDA_CHECK_LAUNCH();
            attention_backward_dq_kernel<T, NI>
                <<<dim3(n_blocks_q, geo.H, B), kThreads, 0, ctx.stream>>>(
                    dqkv.as<T>(), dout.as<T>(), qkv.as<T>(), lse.as<float>(), delta.as<float>(),
                    geo, scale);
            TANDEM_CUDA_CHECK_LAUNCH();
        });
    });
}

}  // namespace tandem::backend::cuda

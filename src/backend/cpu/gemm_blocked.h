// The loops of tandem's own matrix product (gemm.h), shared by its AVX-512 and AVX2 kernels and
// blocked the usual way for caches (Goto/BLIS):
//
//   for each block of kNc columns of C                      (jc)
//     for each slice of at most kKc of the K dimension      (pc)
//       pack op(B)[pc.., jc..] into panels of kNr columns   (in L3)
//       for each block of kMc rows                          (ic)
//         pack op(A)[ic.., pc..] into panels of kMr rows    (in L2)
//         for each panel pair: C tile [kMr x kNr] += A panel x B panel (the register tile)
//
// The K slices are of equal length (rounded up to 16), not kKc and a short rest: a short slice
// would cost a pass over C for little work.
// A kernel supplies the sizes and the three vector pieces (the A and B packing and the register
// tile, compiled for its instruction set); these loops hold no vector code. Threads split C into
// blocks of whole tiles, so each element of C is summed by one thread, k in order, slice after
// slice: the result does not depend on the thread count.
#pragma once

#include <omp.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <memory>

#include "backend/cpu/parallel.h"

namespace tandem::backend::cpu {

// One product as gemm.h's own_gemm was given it: C [M, N] = op(A) op(B) + beta C.
struct GemmArgs {
    bool trans_a, trans_b;
    int64_t M, N, K;
    const float* a;
    int64_t lda;
    const float* b;
    int64_t ldb;
    float beta;
    float* c;
    int64_t ldc;
};

// What each kernel's file exports: the whole product (BlockedGemm::run), and the pieces of a
// product against an operand packed once (BlockedGemm::pack_b_whole and ::with_packed_b, for
// gemm.h's pack_b and gemm_packed_b), compiled for its own instruction set. All null where the
// compiler has no code for that instruction set.
struct KernelEntries {
    void (*gemm)(const GemmArgs& x);
    int64_t (*packed_b_floats)(int64_t K, int64_t N);
    void (*pack_b)(const GemmArgs& x, float* packed);
    void (*gemm_packed_b)(const GemmArgs& x, const float* packed, int64_t packed_k,
                          int64_t packed_n);
};
extern const KernelEntries kAvx512Entries;
extern const KernelEntries kAvx2Entries;

struct FreeDeleter {
    void operator()(float* p) const { std::free(p); }
};
using AlignedFloats = std::unique_ptr<float[], FreeDeleter>;

inline AlignedFloats aligned_floats(int64_t n) {
    return AlignedFloats(static_cast<float*>(std::aligned_alloc(64, static_cast<size_t>(n) * 4)));
}

// What a Kernel provides:
//   kMr, kNr, kKc, kMc, kNc: the register tile and the blocks of the header comment;
//   kAllOfK: whether to pack all of op(B)'s K for a block of columns first when it fits in
//     kKc x kNc floats, and take each block of rows through all of K (see block());
//   pack_a(x, m0, mc, p0, kc, panels): rows [m0, m0 + mc) of op(A), K slice [p0, p0 + kc), as
//     panels of kMr rows, panel[k * kMr + i], missing rows zero;
//   pack_b(x, n0, nc, p0, kc, panels): columns [n0, n0 + nc) of op(B) as panels of kNr columns,
//     panel[k * kNr + n], missing columns zero;
//   tile(kc, ap, bp, c, ldc, accumulate, rows, cols): the C tile [rows x cols] (at most
//     kMr x kNr) = or += A panel x B panel over kc.
template <class Kernel>
class BlockedGemm {
   public:
    static void run(const GemmArgs& x) {
        // Threads split the longer side of C in whole tiles and each packs the operand of the
        // shorter side in full: no sharing and no barriers, at the price of packing the smaller
        // operand once per thread.
        const bool split_rows = x.M >= x.N;
        const int64_t tiles = split_rows ? ceil_div(x.M, Kernel::kMr) : ceil_div(x.N, Kernel::kNr);
#pragma omp parallel
        {
            thread_local AlignedFloats a_panels = aligned_floats(Kernel::kMc * Kernel::kKc);
            thread_local AlignedFloats b_panels = aligned_floats(kBFloats);
            const Range mine = part_of(tiles, omp_get_num_threads(), omp_get_thread_num());
            if (split_rows)
                block(x, mine.begin * Kernel::kMr, std::min(x.M, mine.end * Kernel::kMr), 0, x.N,
                      a_panels.get(), b_panels.get());
            else
                block(x, 0, x.M, mine.begin * Kernel::kNr, std::min(x.N, mine.end * Kernel::kNr),
                      a_panels.get(), b_panels.get());
        }
    }

    // op(B) [K, N] of x packed whole for with_packed_b: slices of kKc along K (the last shorter),
    // each slice's columns as panels of kNr ([slice][panel][k][n]), the missing columns zero.
    static int64_t packed_b_floats(int64_t K, int64_t N) { return K * ceil_div(N, kNr) * kNr; }
    static void pack_b_whole(const GemmArgs& x, float* packed) {
        const int64_t padded = ceil_div(x.N, kNr) * kNr;
        for (int64_t pc = 0; pc < x.K; pc += kKc)
            Kernel::pack_b(x, 0, x.N, pc, std::min(kKc, x.K - pc), packed + pc * padded);
    }

    // C = op(A) op(B) + beta C on the calling thread alone (inside a parallel region), op(B)
    // the leading [x.K, x.N] block of the [packed_k, packed_n] that pack_b_whole packed. The
    // slices of K are those of the packing (kKc long), each packing of A's rows stays in L2 and
    // each B panel in L1 while A's panels go past it.
    static void with_packed_b(const GemmArgs& x, const float* packed, int64_t packed_k,
                              int64_t packed_n) {
        thread_local AlignedFloats a_panels = aligned_floats(kMc * kKc);
        const int64_t padded = ceil_div(packed_n, kNr) * kNr;
        for (int64_t pc = 0; pc < x.K; pc += kKc) {
            const int64_t kc = std::min(kKc, x.K - pc);
            const int64_t panel_k = std::min(kKc, packed_k - pc);  // the panels' own length
            const float* slice = packed + pc * padded;
            const bool accumulate = pc > 0 || x.beta != 0.0f;
            for (int64_t ic = 0; ic < x.M; ic += kMc) {
                const int64_t mc = std::min(kMc, x.M - ic);
                Kernel::pack_a(x, ic, mc, pc, kc, a_panels.get());
                for (int64_t jr = 0; jr < x.N; jr += kNr)
                    for (int64_t ir = 0; ir < mc; ir += kMr)
                        Kernel::tile(kc, a_panels.get() + ir * kc, slice + jr * panel_k,
                                     x.c + (ic + ir) * x.ldc + jr, x.ldc, accumulate,
                                     std::min(kMr, mc - ir), std::min(kNr, x.N - jr));
            }
        }
    }

   private:
    static constexpr int64_t kMr = Kernel::kMr, kNr = Kernel::kNr, kKc = Kernel::kKc,
                             kMc = Kernel::kMc, kNc = Kernel::kNc;
    // Packed B per thread: one slice of kNc columns, or all of K when that is no larger.
    static constexpr int64_t kBFloats = kKc * kNc;
    static_assert(kMc % kMr == 0 && kNc % kNr == 0 && kKc % 16 == 0);

    // The length of K's slices: as many as slices of kKc would take, of equal length.
    static int64_t slice_length(int64_t K) {
        return std::min(kKc, ceil_div(ceil_div(K, ceil_div(K, kKc)), 16) * 16);
    }

    // One slice of K for the rows [ic, ic + mc) against packed B panels b (kc x nc).
    static void rows_times_slice(const GemmArgs& x, int64_t ic, int64_t mc, int64_t jc, int64_t nc,
                                 int64_t pc, int64_t kc, const float* b, float* a_panels) {
        const bool accumulate = pc > 0 || x.beta != 0.0f;
        Kernel::pack_a(x, ic, mc, pc, kc, a_panels);
        for (int64_t jr = 0; jr < nc; jr += kNr)
            for (int64_t ir = 0; ir < mc; ir += kMr)
                Kernel::tile(kc, a_panels + ir * kc, b + jr * kc, x.c + (ic + ir) * x.ldc + jc + jr,
                             x.ldc, accumulate, std::min(kMr, mc - ir), std::min(kNr, nc - jr));
    }

    // One thread's block of C, rows [m0, m1) and columns [n0, n1), packing everything it reads
    // into this thread's own buffers.
    static void block(const GemmArgs& x, int64_t m0, int64_t m1, int64_t n0, int64_t n1,
                      float* a_panels, float* b_panels) {
        const int64_t slice = slice_length(x.K);
        for (int64_t jc = n0; jc < n1; jc += kNc) {
            const int64_t nc = std::min(kNc, n1 - jc);
            const int64_t slice_floats = ceil_div(nc, kNr) * kNr;  // per row of K
            if (Kernel::kAllOfK && x.K * slice_floats <= kBFloats) {
                // All of op(B) for these columns fits: pack every slice first, then take each
                // block of rows through all of K while its part of C stays in L2 (C read and
                // written once, not once per slice: for the weight gradients, C is the largest
                // matrix).
                for (int64_t pc = 0; pc < x.K; pc += slice)
                    Kernel::pack_b(x, jc, nc, pc, std::min(slice, x.K - pc),
                                   b_panels + pc * slice_floats);
                for (int64_t ic = m0; ic < m1; ic += kMc)
                    for (int64_t pc = 0; pc < x.K; pc += slice)
                        rows_times_slice(x, ic, std::min(kMc, m1 - ic), jc, nc, pc,
                                         std::min(slice, x.K - pc), b_panels + pc * slice_floats,
                                         a_panels);
            } else {
                for (int64_t pc = 0; pc < x.K; pc += slice) {
                    const int64_t kc = std::min(slice, x.K - pc);
                    Kernel::pack_b(x, jc, nc, pc, kc, b_panels);
                    for (int64_t ic = m0; ic < m1; ic += kMc)
                        rows_times_slice(x, ic, std::min(kMc, m1 - ic), jc, nc, pc, kc, b_panels,
                                         a_panels);
                }
            }
        }
    }
};

// The entry points of a kernel's blocked product, for its file's KernelEntries.
template <class Kernel>
constexpr KernelEntries entries_of() {
    using Gemm = BlockedGemm<Kernel>;
    return {&Gemm::run, &Gemm::packed_b_floats, &Gemm::pack_b_whole, &Gemm::with_packed_b};
}

}  // namespace tandem::backend::cpu

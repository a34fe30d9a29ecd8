// The convolutions' GEMM: C (M x N) = A (M x K) @ B (K x N) on matmul's register-blocked
// micro-kernel (kernels/matmul/microkernel.h), where A is a weight packed once into MR-row
// slivers over the whole of K (or read in place: ConvA), and B is never materialised: a caller-given packer writes each
// kc x NR panel of B straight from the image (implicit im2col, microkernel.h's panel layout
// b[k * NR + j], zero-padded past the panel's last column). Kernel translation units only.
//
// Loops of one work item (rows [m0, m1) and columns [j0, j1) of C), outermost first:
//   pc over K by kc    - pack B[pc:pc+kc, j0:j1] into panels once (bbuf, kc x NB floats, L2)
//   row blocks of MB   - the MB x kc block of the packed A (<= 240 x 256 floats = 240 KiB)
//   p over the panels  - the kc x NR panel stays in L1 ...
//   i over the slivers - ... while the block's MR x kc A slivers stream from L2.
// C carries the partial sums between K blocks (micro_kernel's `accumulate`); after the last
// block `finish(row, m, col, n)` applies the epilogue to the m x n tile just stored, while it
// is in L1. Each C element is one FMA chain per K block, the blocks added in k order: the
// kc blocks depend on K alone, so the bits never depend on how items are cut or on threads.
#pragma once

#ifndef FASTATTN_ISA_NAMESPACE
#error "kernels/conv/gemm_driver.h is for kernel translation units (compiled per ISA)"
#endif

#include <cstdint>
#include <cstring>

#include "core/util.h"
#include "kernels/matmul/microkernel.h"

namespace fastattn {
namespace FASTATTN_ISA_NAMESPACE {

// Two tiles per ISA path; each call takes the one that computes fewer padded products for its
// shape (conv_tile_narrow), a choice made from the shape alone.
//   Wide, AVX-512: 8 x 48 (24 accumulators + 3 B vectors + 1 broadcast = 28 of 32 zmm, as
//     matmul's 12 x 32): output channel counts are multiples of 8 (64, 128, ... 2048), where
//     12-row slivers waste a third of the last one (64 = 5 x 12 + 4: 11% of the work); per k
//     3 B loads and 8 broadcasts for 24 FMAs (matmul's: 2 + 12).
//   Narrow: matmul's 12 x 32 - for few pixels (7 x 7 = 49: 2 x 48 columns computed, 2 x 32
//     with it).
// AVX2 (6 x 16) and baseline (4 x 8): matmul's tile for both.
template <int MR_, int NV_>
struct ConvTile {
  static constexpr int MR = MR_, NV = NV_, NR = NV_ * Vec::size;
};
using WideTile = ConvTile<Vec::size == 16 ? 8 : kMR, Vec::size == 16 ? 3 : kNV>;
using NarrowTile = ConvTile<kMR, kNV>;

// Whether the narrow tile computes fewer products (padding included) for M x P.
inline bool conv_tile_narrow(int64_t M, int64_t P) {
  return round_up(M, NarrowTile::MR) * round_up(P, NarrowTile::NR) <
         round_up(M, WideTile::MR) * round_up(P, WideTile::NR);
}

// Rows of A per L2 block: matmul's MC (240, a multiple of 4, 6, 8 and 12).
constexpr int64_t kConvMB = kMC;

// K blocks of at most matmul's kKC = 256, balanced (K = 576 -> 3 x 192 rather than
// 256 + 256 + 64): a panel of the wide tile, 192 x 48 floats = 36 KiB, stays in a 48 KiB L1.
inline int64_t conv_kc(int64_t K) {
  const int64_t blocks = ceil_div(K > 0 ? K : 1, kKC);
  return ceil_div(K > 0 ? K : 1, blocks);
}

// Floats of the packed A of an M x K matrix: ceil(M / MR) slivers of MR x K.
template <class Tile>
inline int64_t packed_a_size(int64_t M, int64_t K) { return round_up(M, Tile::MR) * K; }

// A (element (i, k) at a[i * rs + k * cs]) into slivers: sliver s at dst + s * MR * K,
// element (s MR + i, k) at [k * MR + i], rows past M zero.
template <class Tile>
inline void pack_a_full(int64_t M, int64_t K, const float* a, int64_t rs, int64_t cs,
                        float* dst) {
  pack_a<Tile::MR>(M, K, a, rs, cs, dst);
}

// The A operand: packed slivers (all rows), or the weight read in place - rows [0, full) at
// rows + i * ld + k, full = M rounded down to MR - with only the last partial sliver packed
// (packed then holds rows [full, M)). The micro-kernel performs the same operations either
// way (same bits); in place saves the packing pass, which costs as much as the product when
// each weight meets few pixels (7 x 7 maps).
struct ConvA {
  const float* packed;
  const float* rows = nullptr;  // null: everything packed
  int64_t ld = 0, full = 0;
};

// Packs B[:, j0:j1] in the layout conv_gemm_block reads: K block pc at dst + pc * NB (NB =
// round_up(j1 - j0, NR)), its panels kc x NR one after the other.
template <class Tile, class PackB>
void conv_pack_b_block(int64_t K, int64_t pc, int64_t j0, int64_t j1, const PackB& pack_b,
                       float* dst) {
  constexpr int NR = Tile::NR;
  const int64_t kc = K - pc < conv_kc(K) ? K - pc : conv_kc(K), nb = round_up(j1 - j0, NR);
  for (int64_t p = 0; p < nb / NR; ++p) {
    const int64_t j = j0 + p * NR;
    pack_b(pc, kc, j, static_cast<int>(j1 - j < NR ? j1 - j : NR), dst + pc * nb + p * kc * NR);
  }
}

// matmul's micro-kernel in a function of its own: inlined into a large item loop (with the
// im2col packer beside it) GCC allocated its 24 accumulators worse - measured, one core,
// 256 -> 256 3x3 on 14 x 14: 3.47 ms, against 2.33 ms for the same GEMM from a 1x1 input,
// where the call was not inlined.
#if defined(__GNUC__)
#define FASTATTN_CONV_NOINLINE __attribute__((noinline))
#else
#define FASTATTN_CONV_NOINLINE
#endif
template <int MR, int NV, bool kDirect>
FASTATTN_CONV_NOINLINE void conv_micro_kernel(int64_t kc, const float* a, const float* b,
                                              float* c, int64_t ldc, int m, int n,
                                              bool accumulate, int64_t lda, int64_t ldb) {
  micro_kernel<MR, NV, kDirect>(kc, a, b, c, ldc, m, n, accumulate, nullptr, lda, ldb);
}

// One work item: C[m0:m1, j0:j1] = finish(A[m0:m1, :] @ B[:, j0:j1]); m0 a multiple of MR.
// pack_b(k0, kc, j, n, dst) writes B[k0:k0+kc, j:j+n] (n <= NR) as dst[k * NR + jj],
// zeros for jj in [n, NR). bbuf holds kc_max x round_up(j1 - j0, NR) floats. With bpacked,
// B[:, j0:j1] was packed before (conv_pack_b_block, shared by the items of several row
// blocks) and neither pack_b nor bbuf is used.
template <class Tile, class PackB, class Finish>
void conv_gemm_block(int64_t K, const ConvA& a, int64_t m0, int64_t m1, int64_t j0,
                     int64_t j1, const PackB& pack_b, float* c, int64_t ldc,
                     const Finish& finish, float* bbuf, const float* bpacked = nullptr) {
  constexpr int MR = Tile::MR, NR = Tile::NR;
  if (K == 0) {  // an empty sum: C = finish(0)
    for (int64_t i = m0; i < m1; ++i) std::memset(c + i * ldc + j0, 0, sizeof(float) * (j1 - j0));
    for (int64_t j = j0; j < j1; j += NR)
      for (int64_t i = m0; i < m1; i += MR)
        finish(i, static_cast<int>(m1 - i < MR ? m1 - i : MR), j,
               static_cast<int>(j1 - j < NR ? j1 - j : NR));
    return;
  }
  const int64_t kcb = conv_kc(K), npan = ceil_div(j1 - j0, NR);
  for (int64_t pc = 0; pc < K; pc += kcb) {
    const int64_t kc = K - pc < kcb ? K - pc : kcb;
    if (bpacked) {
      bbuf = const_cast<float*>(bpacked) + pc * npan * NR;  // read only
    } else {
      for (int64_t p = 0; p < npan; ++p) {
        const int64_t j = j0 + p * NR;
        pack_b(pc, kc, j, static_cast<int>(j1 - j < NR ? j1 - j : NR), bbuf + p * kc * NR);
      }
    }
    const bool last = pc + kc == K;
    for (int64_t r0 = m0; r0 < m1; r0 += kConvMB) {
      const int64_t r1 = m1 - r0 < kConvMB ? m1 : r0 + kConvMB;
      for (int64_t p = 0; p < npan; ++p) {
        const int64_t j = j0 + p * NR;
        const int n = static_cast<int>(j1 - j < NR ? j1 - j : NR);
        for (int64_t i = r0; i < r1; i += MR) {
          const int m = static_cast<int>(r1 - i < MR ? r1 - i : MR);
          const float* bp = bbuf + p * kc * NR;
          if (i < a.full)  // only with rows: then m == MR
            conv_micro_kernel<MR, Tile::NV, true>(kc, a.rows + i * a.ld + pc, bp,
                                                  c + i * ldc + j, ldc, MR, n, pc > 0, a.ld, NR);
          else
            conv_micro_kernel<MR, Tile::NV, false>(kc, a.packed + (i - a.full) * K + pc * MR,
                                                   bp, c + i * ldc + j, ldc, m, n, pc > 0, 0, 0);
          if (last) finish(i, m, j, n);
        }
      }
    }
  }
}

}  // namespace FASTATTN_ISA_NAMESPACE
}  // namespace fastattn

// The convolutions' GEMM: C (M x N) = A (M x K) @ B (K x N) on matmul's register-blocked
// micro-kernel (kernels/matmul/microkernel.h), where A is a weight packed once into MR-row
// slivers over the whole of K, and B is never materialised: a caller-given packer writes each
// kc x NR panel of B straight from the image (implicit im2col, microkernel.h's panel layout
// b[k * NR + j], zero-padded past the panel's last column). Kernel translation units only.
//
// Loops of one work item (rows [m0, m1) and columns [j0, j1) of C), outermost first:
//   pc over K by kc    - pack B[pc:pc+kc, j0:j1] into panels (bbuf, kc x NB floats in L2)
//   p over the panels  - the kc x NR panel stays in L1 ...
//   i over the slivers - ... while the MR x kc A slivers stream from L2 (the A block of a conv
//                        layer, Cout x kc <= 240 x 256 floats, fits in about half of L2).
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

// The tile: matmul's (AVX-512 12 x 32, AVX2 6 x 16, baseline 4 x 8).
constexpr int kConvMR = kMR;
constexpr int kConvNV = kNV;
constexpr int kConvNR = kNR;

// K blocks of at most kKC (256: an NR-column panel of 256 x 32 floats = 32 KiB in L1),
// balanced (K = 576 -> 3 x 192 rather than 256 + 256 + 64).
inline int64_t conv_kc(int64_t K) {
  const int64_t blocks = ceil_div(K > 0 ? K : 1, kKC);
  return ceil_div(K > 0 ? K : 1, blocks);
}

// Floats of the packed A of an M x K matrix: ceil(M / MR) slivers of MR x K.
inline int64_t packed_a_size(int64_t M, int64_t K) { return round_up(M, kConvMR) * K; }

// A (element (i, k) at a[i * rs + k * cs]) into slivers: sliver s at dst + s * MR * K,
// element (s MR + i, k) at [k * MR + i], rows past M zero.
inline void pack_a_full(int64_t M, int64_t K, const float* a, int64_t rs, int64_t cs,
                        float* dst) {
  pack_a<kConvMR>(M, K, a, rs, cs, dst);
}

// One work item: C[m0:m1, j0:j1] = finish(A[m0:m1, :] @ B[:, j0:j1]); m0 a multiple of MR.
// pack_b(k0, kc, j, n, dst) writes B[k0:k0+kc, j:j+n] (n <= NR) as dst[k * NR + jj],
// zeros for jj in [n, NR). bbuf holds kc_max x round_up(j1 - j0, NR) floats.
template <class PackB, class Finish>
void conv_gemm_block(int64_t K, const float* apacked, int64_t m0, int64_t m1, int64_t j0,
                     int64_t j1, const PackB& pack_b, float* c, int64_t ldc,
                     const Finish& finish, float* bbuf) {
  constexpr int MR = kConvMR, NR = kConvNR;
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
    for (int64_t p = 0; p < npan; ++p) {
      const int64_t j = j0 + p * NR;
      pack_b(pc, kc, j, static_cast<int>(j1 - j < NR ? j1 - j : NR), bbuf + p * kc * NR);
    }
    const bool last = pc + kc == K;
    for (int64_t p = 0; p < npan; ++p) {
      const int64_t j = j0 + p * NR;
      const int n = static_cast<int>(j1 - j < NR ? j1 - j : NR);
      for (int64_t i = m0; i < m1; i += MR) {
        const int m = static_cast<int>(m1 - i < MR ? m1 - i : MR);
        micro_kernel<MR, kConvNV>(kc, apacked + i * K + pc * MR, bbuf + p * kc * NR,
                                  c + i * ldc + j, ldc, m, n, pc > 0, nullptr);
        if (last) finish(i, m, j, n);
      }
    }
  }
}

}  // namespace FASTATTN_ISA_NAMESPACE
}  // namespace fastattn

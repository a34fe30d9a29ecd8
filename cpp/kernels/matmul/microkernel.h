// The register-blocked micro-kernel of the blocked sgemm, its tile sizes per ISA, the packing
// routines and the fused epilogue. Kernel translation units only (compiled once per ISA).
//
// Tile (MR rows x NR = NV * Vec::size columns of C held in registers for a whole KC loop):
//   AVX-512 (32 zmm): 12 x 32 -> 24 accumulators + 2 B vectors + 1 broadcast of A = 27 registers
//   AVX2    (16 ymm):  6 x 16 -> 12 accumulators + 2 B vectors + 1 broadcast     = 15 registers
//   baseline (4 lanes, SSE2's 16 xmm): 4 x 8 -> 8 accumulators + 2 + 1
// Per k the kernel loads NV vectors of packed B and broadcasts MR scalars of packed A: MR * NV
// FMAs for NV + MR loads (6 x 16: 12 FMAs per 8 loads, above Zen 3's 2 FMA : 3 load ports).
//
// Packed layouts (zero-padded, so the kernel has no bounds checks in its k loop):
//   A sliver: MR rows x kc, stored k-major: a[k * MR + i]
//   B panel:  kc x NR,      stored k-major: b[k * NR + j]  (a pre-packed matrix: b[k * NR + j]
//             with the panel spanning all K rows, the same layout)
#pragma once

#include <cstdint>

#include "kernels/activation_math.h"
#include "kernels/matmul/matmul.h"

namespace fastattn {
namespace FASTATTN_ISA_NAMESPACE {

constexpr int kMR = Vec::size == 16 ? 12 : Vec::size == 8 ? 6 : 4;
constexpr int kNV = 2;
constexpr int kNR = kNV * Vec::size;

// Cache blocking for Zen 3 (32 KiB L1d, 512 KiB L2 per core, 32 MiB L3), the same for every ISA
// so the partial-sum points are the same (they do not change bits anyway: see matmul.h):
//   KC = 256: one A sliver (6 x 256 x 4 B = 6 KiB) + one B panel sliver (256 x 16 x 4 B = 16 KiB)
//             = 22 KiB stay in the 32 KiB L1 while the micro-kernel runs;
//   MC = 240: the packed A block, 240 x 256 x 4 B = 240 KiB, fills about half of the 512 KiB
//             L2, leaving room for the B slivers streaming through; 240 is a multiple of 4, 6, 12;
//   NC = 4096: the packed B block, 256 x 4096 x 4 B = 4 MiB, lives in the 32 MiB L3.
// The driver shrinks MC and NC to balance the blocks of a given shape (never above these).
constexpr int64_t kKC = 256;
constexpr int64_t kMC = 240;
constexpr int64_t kNC = 4096;

inline Vec apply_activation(Activation kind, Vec x) {
  switch (kind) {
    case Activation::relu: return activate<Activation::relu>(x);
    case Activation::gelu: return activate<Activation::gelu>(x);
    case Activation::gelu_tanh: return activate<Activation::gelu_tanh>(x);
    case Activation::silu: return activate<Activation::silu>(x);
    default: return x;
  }
}

// The epilogue seen from one C tile: bias at the tile's first column, residual at its origin.
struct TileEpilogue {
  const float* bias;      // or null
  const float* residual;  // or null; row stride ldr
  int64_t ldr;
  Activation act;
};

inline TileEpilogue tile_epilogue(const MatmulEpilogue& ep, int64_t row, int64_t col) {
  return {ep.bias ? ep.bias + col : nullptr,
          ep.residual ? ep.residual + row * ep.ld_residual + col : nullptr, ep.ld_residual,
          ep.activation};
}

// act(x + bias) + residual for `cnt` columns starting at column offset j of tile row i.
inline Vec finish(Vec x, const TileEpilogue& te, int i, int j, int cnt) {
  if (te.bias) x = x + load_n(te.bias + j, cnt);
  if (te.act != Activation::none) x = apply_activation(te.act, x);
  if (te.residual) x = x + load_n(te.residual + i * te.ldr + j, cnt);
  return x;
}

// The same for a whole tile row of NV vectors at once (full tiles): the exact GELU's long
// dependency chain then runs NV copies interleaved (VecN, core/vec_math.h) instead of one at a
// time; per lane the same operations as finish(), so the same bits.
template <int NV>
inline VecN<NV> finish_row(VecN<NV> x, const TileEpilogue& te, int i) {
  if (te.bias) x = x + VecN<NV>::load(te.bias);
  if (te.act == Activation::gelu) {
    x = gelu_exact(x);
  } else if (te.act != Activation::none) {
    for (int v = 0; v < NV; ++v) x.v[v] = apply_activation(te.act, x.v[v]);
  }
  if (te.residual) x = x + VecN<NV>::load(te.residual + i * te.ldr);
  return x;
}

// The k loop of the AVX2 6 x 16 tile (kMR = 6 rows x 2 vectors; see micro_kernel):
// acc[i][v] = sum over k of A[i, k] B[k, v-th vector],
// one FMA chain from zero per accumulator, in k order (micro_kernel's generic loop, the same
// operations), with the accumulators as named variables (see micro_kernel). A packed
// (a[k * kMR + i]) or, kDirect, in place (a[i * lda + k]); B at b + k * (kDirect ? ldb : NR).
#if defined(__GNUC__)
#define FASTATTN_TILE_NOINLINE __attribute__((noinline))
#else
#define FASTATTN_TILE_NOINLINE
#endif
#define FASTATTN_TILE_ROWS(X) X(0) X(1) X(2) X(3) X(4) X(5)
template <bool kDirect>
FASTATTN_TILE_NOINLINE void named_tile_loop(int64_t kc, const float* __restrict a,
                                            const float* __restrict b, int64_t lda, int64_t ldb,
                                            Vec (&acc)[6][2]) {
  constexpr int W = Vec::size, NR = 2 * W;
#define FASTATTN_TILE_ZERO(i) Vec c##i##0 = Vec::zero(), c##i##1 = Vec::zero();
  FASTATTN_TILE_ROWS(FASTATTN_TILE_ZERO)
#undef FASTATTN_TILE_ZERO
  for (int64_t k = 0; k < kc; ++k) {
    const float* bk = b + k * (kDirect ? ldb : NR);
    const Vec b0 = Vec::load(bk), b1 = Vec::load(bk + W);
#define FASTATTN_TILE_ROW(i)                                                            \
  {                                                                                     \
    const Vec ai = Vec::broadcast(kDirect ? a[(i) * lda + k] : a[k * kMR + (i)]);       \
    c##i##0 = fmadd(ai, b0, c##i##0);                                                   \
    c##i##1 = fmadd(ai, b1, c##i##1);                                                   \
  }
    FASTATTN_TILE_ROWS(FASTATTN_TILE_ROW)
#undef FASTATTN_TILE_ROW
  }
#define FASTATTN_TILE_OUT(i) acc[i][0] = c##i##0, acc[i][1] = c##i##1;
  FASTATTN_TILE_ROWS(FASTATTN_TILE_OUT)
#undef FASTATTN_TILE_OUT
}
#undef FASTATTN_TILE_ROWS

// C[m x n] (+)= A_sliver (MR x kc) @ B_sliver (kc x NR), then (if te) the epilogue.
// The accumulators start at zero; with `accumulate` (C holds the sum of the previous K blocks)
// C is added once at the end, its lines prefetched before the k loop so the load is free (a
// C-seeded chain would stall every tile on its first FMA). m <= MR, n <= NR: only those rows and
// columns of C are read or written. a and b are packed (zero-padded); or, with kDirect, read in
// place (small products, full tiles only): A[i, k] at a[i * lda + k], B[k, j] at b[k * ldb + j].
template <int MR, int NV, bool kDirect = false>
inline void micro_kernel(int64_t kc, const float* __restrict a, const float* __restrict b,
                         float* c, int64_t ldc, int m, int n, bool accumulate,
                         const TileEpilogue* te, int64_t lda = 0, int64_t ldb = 0) {
  constexpr int W = Vec::size;
  constexpr int NR = NV * W;
  // An epilogue with nothing to do is none: no finish_row call per row. The call is not
  // inlined and every accumulator went through memory around it: one-tile loop (K = 256, an
  // empty epilogue), AVX2 111 -> 128 GFLOP/s per core, AVX-512 189-205 -> 231.
  if (te && !te->bias && !te->residual && te->act == Activation::none) te = nullptr;
  Vec acc[MR][NV];
#pragma GCC unroll 16
  for (int i = 0; i < MR; ++i)
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) acc[i][v] = Vec::zero();
  for (int i = 0; i < m; ++i) {
    prefetch<3, 1>(c + i * ldc);
    prefetch<3, 1>(c + i * ldc + NR - 1);
  }

  if constexpr (MR == kMR && NV == 2 && W == 8) {
    // The AVX2 6 x 16 tile: the same FMAs in a function of its own with the accumulators
    // as named variables. Inline, next to the epilogue's code, GCC 12 kept accumulators in
    // memory (a store-forwarded chain of ~9 cycles per k) and shuffled others between
    // registers: 70 -> 111 GFLOP/s on one core (one-tile loop, K = 256, Intel Xeon with
    // AVX-512; the AVX-512 12 x 32 tile measured 189-201 either way, so it keeps the loop
    // below). The call and the 2 x MR stores of acc cost nothing next to MR x K FMAs.
    named_tile_loop<kDirect>(kc, a, b, lda, ldb, acc);
  } else {
#pragma GCC unroll 4
    for (int64_t k = 0; k < kc; ++k) {
      Vec bv[NV];
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) bv[v] = Vec::load(b + k * (kDirect ? ldb : NR) + v * W);
#pragma GCC unroll 16
      for (int i = 0; i < MR; ++i) {
        const Vec ai = Vec::broadcast(kDirect ? a[i * lda + k] : a[k * MR + i]);
#pragma GCC unroll 4
        for (int v = 0; v < NV; ++v) acc[i][v] = fmadd(ai, bv[v], acc[i][v]);
      }
    }
  }

  if (m == MR && n == NR) {
#pragma GCC unroll 16
    for (int i = 0; i < MR; ++i) {
      VecN<NV> x;
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) x.v[v] = acc[i][v];
      if (accumulate) x = x + VecN<NV>::load(c + i * ldc);
      if (te && te->act == Activation::none) {
        // bias / residual only: finish_row's adds (the same operations), inline. The call,
        // not inlined, put every accumulator through memory: a tile with K = 64 and a bias,
        // one-tile loop, AVX2 6 x 16 203 -> 108 ns, AVX-512 12 x 32 275 -> 243 ns.
        if (te->bias) x = x + VecN<NV>::load(te->bias);
        if (te->residual) x = x + VecN<NV>::load(te->residual + i * te->ldr);
      } else if (te) {
        x = finish_row(x, *te, i);
      }
      x.store(c + i * ldc);
    }
    return;
  }
#pragma GCC unroll 16
  for (int i = 0; i < MR; ++i) {
    if (i >= m) break;
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) {
      const int cnt = n - v * W > W ? W : n - v * W;
      if (cnt <= 0) break;
      Vec x = acc[i][v];
      if (accumulate) x = x + load_n(c + i * ldc + v * W, cnt);
      if (te) x = finish(x, *te, i, v * W, cnt);
      store_n(c + i * ldc + v * W, x, cnt);
    }
  }
}

#if defined(__AVX2__)
// dst row t (t < 8, row stride dld) = column t of the 8 x 8 block at src (row stride sld):
// the standard unpack / shuffle / lane-permute transpose.
inline void transpose8x8(const float* src, int64_t sld, float* dst, int64_t dld) {
  __m256 r[8], t[8], s[8];
  for (int i = 0; i < 8; ++i) r[i] = _mm256_loadu_ps(src + i * sld);
  for (int i = 0; i < 8; i += 2) {
    t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);
    t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
  }
  for (int i = 0; i < 8; i += 4) {
    s[i] = _mm256_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(1, 0, 1, 0));
    s[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(3, 2, 3, 2));
    s[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(1, 0, 1, 0));
    s[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(3, 2, 3, 2));
  }
  for (int i = 0; i < 4; ++i) {
    _mm256_storeu_ps(dst + i * dld, _mm256_permute2f128_ps(s[i], s[i + 4], 0x20));
    _mm256_storeu_ps(dst + (i + 4) * dld, _mm256_permute2f128_ps(s[i], s[i + 4], 0x31));
  }
}

// The same for a 4 x 8 block: dst row t (t < 8) gets the 4 floats of column t.
inline void transpose4x8(const float* src, int64_t sld, float* dst, int64_t dld) {
  for (int h = 0; h < 8; h += 4) {
    __m128 r0 = _mm_loadu_ps(src + h), r1 = _mm_loadu_ps(src + sld + h);
    __m128 r2 = _mm_loadu_ps(src + 2 * sld + h), r3 = _mm_loadu_ps(src + 3 * sld + h);
    _MM_TRANSPOSE4_PS(r0, r1, r2, r3);
    _mm_storeu_ps(dst + h * dld, r0);
    _mm_storeu_ps(dst + (h + 1) * dld, r1);
    _mm_storeu_ps(dst + (h + 2) * dld, r2);
    _mm_storeu_ps(dst + (h + 3) * dld, r3);
  }
}
#endif

// Packs rows [0, m) x columns [0, kc) of A (element (i, k) at p[i * rs + k * cs]) into MR-row
// slivers at dst (sliver s at dst + s * MR * kc), zero-padding the last sliver to MR rows.
template <int MR>
inline void pack_a(int64_t m, int64_t kc, const float* p, int64_t rs, int64_t cs, float* dst) {
  for (int64_t r0 = 0; r0 < m; r0 += MR, dst += MR * kc) {
    const int mr = static_cast<int>(m - r0 < MR ? m - r0 : MR);
    const float* src = p + r0 * rs;
    if (cs == 1) {
      // rows contiguous along k: read each row once, write it as a column of the sliver
#if defined(__AVX2__)
      // full slivers, 8 k at a time: register transposes of 8-row (and 4-row) blocks write
      // 8 (4) consecutive floats of the sliver per k (the scalar loop below stores one float
      // per 48-byte stride: 1.4 ns a float, measured, 15% of a 1576 x 3072 @ 3072 x 768
      // product); then the k tail
      if (mr == MR) {
        constexpr int kBlocked = MR / 4 * 4;  // rows covered by the transposes (6 -> 4)
        const int64_t kv = kc / 8 * 8;
        for (int64_t k0 = 0; k0 < kv; k0 += 8) {
          int i = 0;
          for (; i + 8 <= kBlocked; i += 8)
            transpose8x8(src + i * rs + k0, rs, dst + k0 * MR + i, MR);
          for (; i + 4 <= kBlocked; i += 4)
            transpose4x8(src + i * rs + k0, rs, dst + k0 * MR + i, MR);
        }
        for (int i = 0; i < MR; ++i)
          for (int64_t k = i < kBlocked ? kv : 0; k < kc; ++k) dst[k * MR + i] = src[i * rs + k];
        continue;
      }
#endif
      for (int i = 0; i < mr; ++i) {
        const float* row = src + i * rs;
        for (int64_t k = 0; k < kc; ++k) dst[k * MR + i] = row[k];
      }
      for (int i = mr; i < MR; ++i)
        for (int64_t k = 0; k < kc; ++k) dst[k * MR + i] = 0.0f;
    } else {
      for (int64_t k = 0; k < kc; ++k) {
        const float* col = src + k * cs;
        for (int i = 0; i < MR; ++i) dst[k * MR + i] = i < mr ? col[i * rs] : 0.0f;
      }
    }
  }
}

// Packs one B panel: kc rows x n (<= NR) columns of B (element (k, j) at p[k * rs + j * cs])
// into dst[k * NR + j], zero columns n..NR-1.
template <int NR>
inline void pack_b_panel(int64_t kc, int n, const float* p, int64_t rs, int64_t cs, float* dst) {
  constexpr int W = Vec::size;
  if (cs == 1) {
    for (int64_t k = 0; k < kc; ++k) {
      const float* row = p + k * rs;
#pragma GCC unroll 4
      for (int v = 0; v < NR / W; ++v) {
        const int cnt = n - v * W > W ? W : n - v * W;
        (cnt > 0 ? load_n(row + v * W, cnt) : Vec::zero()).store(dst + k * NR + v * W);
      }
    }
  } else if (rs == 1) {
    // columns contiguous along k (a (N, K) weight read transposed)
    int64_t k0 = 0;
#if defined(__AVX2__)
    if (n == NR) {  // full panel: 8 x 8 register transposes, then the k tail below
      for (; k0 + 8 <= kc; k0 += 8)
        for (int j = 0; j < NR; j += 8) transpose8x8(p + j * cs + k0, cs, dst + k0 * NR + j, NR);
    }
#endif
    for (int j = 0; j < n; ++j) {
      const float* col = p + j * cs;
      for (int64_t k = k0; k < kc; ++k) dst[k * NR + j] = col[k];
    }
    for (int64_t k = k0; k < kc; ++k)
      for (int j = n; j < NR; ++j) dst[k * NR + j] = 0.0f;
  } else {
    for (int64_t k = 0; k < kc; ++k)
      for (int j = 0; j < NR; ++j) dst[k * NR + j] = j < n ? p[k * rs + j * cs] : 0.0f;
  }
}

}  // namespace FASTATTN_ISA_NAMESPACE
}  // namespace fastattn

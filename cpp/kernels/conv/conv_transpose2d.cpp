// conv_transpose2d as a GEMM then a scatter (col2im), per image n and group g:
//   cols_g ((Cout' kh kw) x (H W)) = W_g^T (Cout' kh kw x C') @ x[n, g] (C' x H W)
//   y[n, o, a sh - pt + u dh, b sw - pl + v dw] += cols_g[(o', u, v), a W + b]
// with Cout' = Cout / groups, C' = C / groups, o = g Cout' + o'. The GEMM is gemm_driver.h's
// (W_g^T packed once, x's channels packed as a plain matrix), parallel over (group, row
// block, column block); the scatter is parallel over output planes, each plane built by one
// thread in a fixed order: zero, then the taps (u, v) in order, each over input pixels in
// order, then + bias. Kernel == stride without padding or dilation (segmentation upsamplers,
// 2x2 stride 2) writes every output pixel from exactly one tap: the scatter is a plain copy.
// Numerics: each output is (C' chain) sums added over at most kh kw taps: error <=
// (C' + kh kw + 2) u (|x| * |w|) summed over its terms. Bits independent of the thread count.
#include <cstring>

#include "core/parallel.h"
#include "kernels/conv/gemm_driver.h"
#include "kernels/conv/im2col.h"
#include "kernels/conv/internal.h"

namespace fastattn {
namespace FASTATTN_ISA_NAMESPACE {

namespace {

constexpr int64_t kBlockCols = 256;  // as conv2d.cpp: a kc x 256 B block in L2
constexpr int64_t kMinItems = 16;

template <class Tile>
void conv_transpose2d_tile(const ConvTranspose2dArgs& a) {
  constexpr int MR = Tile::MR, NR = Tile::NR;
  const int64_t G = a.groups, Cg = a.C / G, Mg = a.Cout / G, taps = a.kh * a.kw;
  const int64_t M = Mg * taps, K = Cg, HW = a.H * a.W, P = a.OH * a.OW;
  // weights: group g's W_g^T, element (r, c) = w[(g C' + c) M + r]
  const int64_t asize = packed_a_size<Tile>(M, K);
  float* apacked = conv_scratch(0, static_cast<std::size_t>(G * asize));
  for (int64_t g = 0; g < G; ++g) pack_a_full<Tile>(M, K, a.w + g * Cg * M, 1, M, apacked + g * asize);
  float* cols = conv_scratch(2, static_cast<std::size_t>(G * M * HW));

  int64_t nb = kBlockCols / NR * NR > NR ? kBlockCols / NR * NR : NR;
  int64_t mb = round_up(M, MR);  // all rows in one item: B packed once per column block
  while (G * ceil_div(M, mb) * ceil_div(HW, nb) < kMinItems && nb > NR) nb -= NR;
  for (int64_t parts = 2; G * ceil_div(M, mb) * ceil_div(HW, nb) < kMinItems && mb > MR; ++parts)
    mb = round_up(ceil_div(M, parts), MR);
  const int64_t n_mb = ceil_div(M, mb), n_jb = ceil_div(HW, nb);
  const int64_t kc = conv_kc(K);
  const int nt_gemm = conv_threads(static_cast<double>(G * M) * HW * (K + 1));
  const int nt_scatter = conv_threads(static_cast<double>(a.Cout) * (P + taps * HW));
  const bool direct = a.kh == a.sh && a.kw == a.sw && a.pt == 0 && a.pl == 0 && a.dh == 1 &&
                      a.dw == 1;
  const auto none = [](int64_t, int, int64_t, int) {};

  for (int64_t n = 0; n < a.N; ++n) {
    if (HW > 0) {
      for_each_item(G * n_mb * n_jb, nt_gemm, static_cast<std::size_t>(kc * round_up(nb, NR)),
                    [&](int64_t item, float* bbuf) {
        const int64_t jb = item % n_jb, ib = item / n_jb % n_mb, g = item / n_jb / n_mb;
        const int64_t m0 = ib * mb, m1 = m0 + mb < M ? m0 + mb : M;
        const int64_t j0 = jb * nb, j1 = j0 + nb < HW ? j0 + nb : HW;
        const MatrixPacker<NR> packer{a.x + (n * a.C + g * Cg) * HW, HW};
        conv_gemm_block<Tile>(K, ConvA{apacked + g * asize}, m0, m1, j0, j1, packer, cols + g * M * HW, HW,
                        none, bbuf);
      });
    }
    for_each_item(a.Cout, nt_scatter, 0, [&](int64_t o, float*) {
      float* y = a.y + (n * a.Cout + o) * P;
      const float* co = cols + o * taps * HW;  // rows (o', u, v) of group o / Mg, consecutive
      std::memset(y, 0, sizeof(float) * P);
      for (int64_t u = 0; u < a.kh; ++u)
        for (int64_t v = 0; v < a.kw; ++v) {
          const float* src = co + (u * a.kw + v) * HW;
          // output column of input column b: b sw + off, inside for b in [lo, hi)
          const int64_t off = v * a.dw - a.pl;
          const int64_t lo = off >= 0 ? 0 : ceil_div(-off, a.sw);
          int64_t hi = a.OW - 1 - off < 0 ? 0 : (a.OW - 1 - off) / a.sw + 1;
          if (hi > a.W) hi = a.W;
          for (int64_t r = 0; r < a.H; ++r) {
            const int64_t oy = r * a.sh - a.pt + u * a.dh;
            if (oy < 0 || oy >= a.OH) continue;
            float* yr = y + oy * a.OW;
            const float* sr = src + r * a.W;
            if (direct) {
              for (int64_t b = lo; b < hi; ++b) yr[b * a.sw + off] = sr[b];
            } else {
              for (int64_t b = lo; b < hi; ++b) yr[b * a.sw + off] += sr[b];
            }
          }
        }
      if (a.bias) {
        const Vec b = Vec::broadcast(a.bias[o]);
        for_each_vec(P, [&](int64_t j, int cnt) { store_n(y + j, load_n(y + j, cnt) + b, cnt); });
      }
    });
  }
}

}  // namespace

void conv_transpose2d(const ConvTranspose2dArgs& a) {
  if (a.N == 0 || a.Cout == 0 || a.OH == 0 || a.OW == 0) return;
  if (conv_tile_narrow(a.Cout / a.groups * a.kh * a.kw, a.H * a.W))
    return conv_transpose2d_tile<NarrowTile>(a);
  conv_transpose2d_tile<WideTile>(a);
}

}  // namespace FASTATTN_ISA_NAMESPACE
}  // namespace fastattn

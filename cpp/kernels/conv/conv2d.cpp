// conv2d as a GEMM per (image, group): Y_g (Cout' x OH*OW) = W_g (Cout' x C' kh kw) @ B,
// B the implicit im2col of the group's input channels (im2col.h), Cout' = Cout / groups,
// C' = C / groups. The output rows are NCHW's channel planes, so C is written in place.
//
// Weights are packed once per call (all groups; read in place on small maps), then the work
// is cut into items (image, group, column block; rows too only when that leaves too few
// items, with B then packed once beforehand and shared), handed out dynamically; each item
// packs its B panels once (kc x NB floats, kept in L2) and runs gemm_driver.h's loops over
// all its rows. The epilogue (bias per output channel, activation, residual) is applied to
// each tile after its last K block.
//
// Numerics: each output is one float32 FMA chain per K block of the C' kh kw products,
// blocks added in order, then + bias, the activation, + residual: |error| <=
// (C' kh kw + 2) u (|W| * |x|) before the epilogue (tests/test_conv.py). Items never split K,
// so the bits are the same for any thread count.
#include "kernels/conv/gemm_driver.h"
#include "kernels/conv/im2col.h"
#include "kernels/conv/internal.h"

namespace fastattn {
namespace FASTATTN_ISA_NAMESPACE {

namespace {

// Column block: NB pixels (a multiple of NR, about 256) -> a kc x NB B block of at most
// 256 x 256 floats = 256 KiB, about half of a 512 KiB - 2 MiB L2, beside the driver's A block.
constexpr int64_t kBlockCols = 256;
// Items per call at least this many where the shape allows, so two to eight threads all get
// work and the dynamic schedule can balance them (a fixed number: blocking never depends on
// the thread count).
constexpr int64_t kMinItems = 16;

// Weights read in place (ConvA) when an image has at most 1024 output pixels (32 x 32): then
// each weight multiplies few pixels and packing it costs as much as the product (measured,
// one core, batch 1: 2048 -> 512 1x1 on 7 x 7 2.09 -> 1.04 ms, 512 -> 512 3x3 on 7 x 7
// 7.07 -> 4.58 ms, before the other changes); on large maps the packed slivers (contiguous, no L1 set conflicts
// between weight rows) were as fast or faster (256 -> 512 1x1 stride 2 on 56 x 56: 2.06 vs
// 2.57 ms).
constexpr int64_t kInPlaceMaxPixels = 1024;

template <class Tile, class MakePacker>
void run(const Conv2dArgs& a, const MakePacker& make_packer) {
  constexpr int MR = Tile::MR, NR = Tile::NR;
  const int64_t G = a.groups, Cg = a.C / G, Mg = a.Cout / G, K = Cg * a.kh * a.kw;
  const int64_t P = a.OH * a.OW;
  // weights: group g's (Mg, K) rows, packed into slivers at apacked + g * asize, or read in
  // place but for the last partial sliver (packed there) when each weight meets few pixels
  const bool in_place = P <= kInPlaceMaxPixels;
  const int64_t full = in_place ? Mg / MR * MR : 0;
  const int64_t asize = packed_a_size<Tile>(Mg - full, K);
  float* apacked = conv_scratch(0, static_cast<std::size_t>(G * asize));
  for (int64_t g = 0; g < G; ++g)
    pack_a_full<Tile>(Mg - full, K, a.w + (g * Mg + full) * K, K, 1, apacked + g * asize);

  int64_t nb = kBlockCols / NR * NR > NR ? kBlockCols / NR * NR : NR;
  int64_t mb = round_up(Mg, MR);  // all rows in one item: B packed once per column block
  // finer blocks while there are too few items (columns first: each row block repacks B)
  while (a.N * G * ceil_div(Mg, mb) * ceil_div(P, nb) < kMinItems && nb > NR) nb -= NR;
  for (int64_t parts = 2; a.N * G * ceil_div(Mg, mb) * ceil_div(P, nb) < kMinItems && mb > MR;
       ++parts)
    mb = round_up(ceil_div(Mg, parts), MR);
  const int64_t n_mb = ceil_div(Mg, mb), n_jb = ceil_div(P, nb);
  const int64_t items = a.N * G * n_mb * n_jb;
  const int64_t kc = conv_kc(K);
  const double work = static_cast<double>(a.N) * a.Cout * static_cast<double>(P) * (K + 1);

  // Several row blocks per column block (few pixels): B is packed once beforehand, shared by
  // them, rather than by each (measured, 512 -> 512 3x3 on 7 x 7: 8 row blocks each packing
  // their B took longer than the product).
  const int64_t nbr = round_up(nb, NR);
  float* shared_b = nullptr;
  if (n_mb > 1) {
    const int64_t kblocks = ceil_div(K, kc);
    shared_b = conv_scratch(2, static_cast<std::size_t>(a.N * G * n_jb * K * nbr));
    for_each_item(a.N * G * n_jb * kblocks, conv_threads(work / 16), 0, [&](int64_t t, float*) {
      const int64_t block = t / kblocks, pc = t % kblocks * kc;
      const int64_t jb = block % n_jb, ng = block / n_jb, n = ng / G, g = ng % G;
      const int64_t j0 = jb * nb, j1 = j0 + nb < P ? j0 + nb : P;
      const auto packer = make_packer(a.x + (n * a.C + g * Cg) * a.H * a.W);
      conv_pack_b_block<Tile>(K, pc, j0, j1, packer, shared_b + block * K * nbr);
    });
  }

  for_each_item(items, conv_threads(work), static_cast<std::size_t>(shared_b ? 0 : kc * nbr),
                [&](int64_t item, float* bbuf) {
    const int64_t jb = item % n_jb, rest = item / n_jb;
    const int64_t ib = rest % n_mb, ng = rest / n_mb;
    const int64_t n = ng / G, g = ng % G;
    const int64_t m0 = ib * mb, m1 = m0 + mb < Mg ? m0 + mb : Mg;
    const int64_t j0 = jb * nb, j1 = j0 + nb < P ? j0 + nb : P;
    const int64_t plane0 = (n * a.Cout + g * Mg) * P;  // first output channel of the group
    float* c = a.y + plane0;
    const float* res = a.residual ? a.residual + plane0 : nullptr;
    const float* bias = a.bias ? a.bias + g * Mg : nullptr;
    const auto packer = make_packer(a.x + (n * a.C + g * Cg) * a.H * a.W);
    const Activation act = a.activation;
    const bool epilogue = bias || res || act != Activation::none;
    const auto finish = [&](int64_t row, int m, int64_t col, int cols) {
      if (!epilogue) return;
      for (int i = 0; i < m; ++i) {
        float* ci = c + (row + i) * P + col;
        const float* ri = res ? res + (row + i) * P + col : nullptr;
        const Vec b = Vec::broadcast(bias ? bias[row + i] : 0.0f);
        for_each_vec(cols, [&](int64_t j, int cnt) {
          store_n(ci + j, conv_finish(load_n(ci + j, cnt), bias != nullptr, b, act,
                                      ri ? ri + j : nullptr, cnt), cnt);
        });
      }
    };
    const ConvA wa{apacked + g * asize, in_place ? a.w + g * Mg * K : nullptr, K, full};
    const float* bpre = shared_b ? shared_b + ((n * G + g) * n_jb + jb) * K * nbr : nullptr;
    conv_gemm_block<Tile>(K, wa, m0, m1, j0, j1, packer, c, P, finish, bbuf, bpre);
  });
}

template <class Tile>
void conv2d_tile(const Conv2dArgs& a) {
  constexpr int NR = Tile::NR;
  const Im2colGeometry base{nullptr, a.H, a.W, a.kh, a.kw, a.sh, a.sw,
                            a.pt, a.pl, a.dh, a.dw, a.OW};
  const auto geometry = [base](const float* x) {
    Im2colGeometry g = base;
    g.x = x;
    return g;
  };
  if (a.kh == 1 && a.kw == 1 && a.sh == 1 && a.sw == 1 && a.pt == 0 && a.pl == 0 &&
      a.OH == a.H && a.OW == a.W) {
    // 1x1: the channels are B's rows, a plain matrix of stride H W
    const int64_t hw = a.H * a.W;
    return run<Tile>(a, [hw](const float* x) { return MatrixPacker<NR>{x, hw}; });
  }
  if (a.kh == a.sh && a.kw == a.sw && a.pt == 0 && a.pl == 0 && a.dh == 1 && a.dw == 1)
    return run<Tile>(a, [&](const float* x) { return PatchPacker<NR>{geometry(x)}; });
  run<Tile>(a, [&](const float* x) { return Im2colPacker<NR>{geometry(x)}; });
}

}  // namespace

void conv2d_gemm(const Conv2dArgs& a) {
  if (conv_tile_narrow(a.Cout / a.groups, a.OH * a.OW)) return conv2d_tile<NarrowTile>(a);
  conv2d_tile<WideTile>(a);
}

}  // namespace FASTATTN_ISA_NAMESPACE
}  // namespace fastattn

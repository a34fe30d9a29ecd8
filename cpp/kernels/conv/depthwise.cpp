// Depthwise conv2d (C / groups == 1: each output channel o reads the one input channel
// o / (Cout / groups)): too little work per output (kh kw products) for the GEMM, so a direct
// loop over output rows, vectorised along the row:
//   acc[j] = 0; for (u, v) in order: acc[j] += w[o, u, v] x[i sh - pt + u dh, j sw - pl + v dw]
// over the j where that pixel is inside the image (outside terms are zero and skipped), then
// y[i, j] = act(acc[j] + bias[o]) + residual[i, j]. The row accumulator (OW floats) stays in
// L1; a stride > 1 first gathers the taps' pixels into a contiguous row. Stride 1 (the common
// case) instead pads the plane once and keeps each output vector's sum in a register (below).
// Numerics: one float32 FMA chain of kh kw terms per output, in (u, v) order: error <=
// (kh kw + 2) u (|w| * |x|). Work is split over (image, channel) planes: bits independent of
// the thread count.
#include <type_traits>

#include "core/parallel.h"
#include "kernels/conv/im2col.h"
#include "kernels/conv/internal.h"

namespace fastattn {
namespace FASTATTN_ISA_NAMESPACE {

void conv2d_depthwise(const Conv2dArgs& a) {
  const int64_t mult = a.Cout / a.groups;  // output channels per input channel
  const int64_t planes = a.N * a.Cout, taps = a.kh * a.kw, OW = a.OW;
  const int64_t per_plane = a.OH * OW * (taps + 1);
  const int nt = conv_threads(static_cast<double>(planes) * static_cast<double>(per_plane));
  // Stride 1 with a padded plane of about the arrays' size: the plane is copied once into a
  // zero-bordered buffer (Hp x Wp, the rows and columns the windows read), and each output
  // vector keeps its kh kw-term sum in a register - four independent chains cover the FMA
  // latency, no bounds anywhere. The padding zeros are then added as w * 0 terms (the row
  // path below skips them: the same values but for the sign of a zero sum or an inf weight
  // times 0; one path per call, chosen by the shape).
  const int64_t Hp = (a.OH - 1) * a.sh + (a.kh - 1) * a.dh + 1;
  const int64_t Wp = (OW - 1) + (a.kw - 1) * a.dw + 1;
  const bool padded = a.sw == 1 &&
      static_cast<double>(Hp) * static_cast<double>(Wp) <=
          4.0 * (static_cast<double>(a.H) * a.W + static_cast<double>(a.OH) * OW) + 65536.0;
  // acc (OW floats) + a gathered row for strided convolutions (OW floats), or the padded plane
  const std::size_t scratch = static_cast<std::size_t>(padded ? Hp * Wp : 2 * OW);
  for_each_item(planes, nt, scratch, [&](int64_t plane, float* buf) {
    float* acc = buf;
    float* gathered = buf + OW;
    const int64_t n = plane / a.Cout, o = plane % a.Cout;
    const float* xin = a.x + (n * a.C + o / mult) * a.H * a.W;
    const float* wo = a.w + o * taps;
    float* yo = a.y + plane * a.OH * OW;
    const float* ro = a.residual ? a.residual + plane * a.OH * OW : nullptr;
    const bool has_bias = a.bias != nullptr;
    const Vec b = Vec::broadcast(has_bias ? a.bias[o] : 0.0f);
    if (padded) {
      float* pp = buf;  // pp[r Wp + q] = x[r - pt, q - pl], zero outside
      for (int64_t r = 0; r < Hp; ++r) {
        float* pr = pp + r * Wp;
        const int64_t iy = r - a.pt;
        if (iy < 0 || iy >= a.H) {
          zero_floats(pr, Wp);
          continue;
        }
        const int64_t lo = a.pl < Wp ? a.pl : Wp;
        const int64_t hi = a.pl + a.W < Wp ? a.pl + a.W : Wp;
        zero_floats(pr, lo);
        if (hi > lo) copy_floats(pr + lo, xin + iy * a.W + (lo - a.pl), hi - lo);
        zero_floats(pr + (hi > lo ? hi : lo), Wp - (hi > lo ? hi : lo));
      }
      const int64_t kh = a.kh, kw = a.kw, dh = a.dh, dw = a.dw, sh = a.sh;
      const Activation act = a.activation;
      constexpr int W = Vec::size;
      for (int64_t i = 0; i < a.OH; ++i) {
        float* yi = yo + i * OW;
        const float* ri = ro ? ro + i * OW : nullptr;
        const float* top = pp + i * sh * Wp;
        // NV vectors of output columns from j, the last with `last` lanes
        const auto chains = [&](int64_t j, auto nv, int last) {
          constexpr int NV = decltype(nv)::value;
          Vec s[NV];
#pragma GCC unroll 4
          for (int q = 0; q < NV; ++q) s[q] = Vec::zero();
          for (int64_t u = 0; u < kh; ++u) {
            const float* p = top + u * dh * Wp + j;
            const float* wu = wo + u * kw;
            for (int64_t v = 0; v < kw; ++v) {
              const Vec wv = Vec::broadcast(wu[v]);
#pragma GCC unroll 4
              for (int q = 0; q < NV; ++q)
                s[q] = fmadd(wv, load_n(p + v * dw + q * W, q == NV - 1 ? last : W), s[q]);
            }
          }
#pragma GCC unroll 4
          for (int q = 0; q < NV; ++q) {
            const int c = q == NV - 1 ? last : W;
            store_n(yi + j + q * W, conv_finish(s[q], has_bias, b, act,
                                                ri ? ri + j + q * W : nullptr, c), c);
          }
        };
        int64_t j = 0;
        for (; j + 4 * W <= OW; j += 4 * W) chains(j, std::integral_constant<int, 4>{}, W);
        const int64_t rest = OW - j;  // 0 .. 4W - 1 columns: 1 to 4 chains
        const int last = rest > 0 ? static_cast<int>(rest - (rest - 1) / W * W) : 0;
        switch (ceil_div(rest, W)) {
          case 1: chains(j, std::integral_constant<int, 1>{}, last); break;
          case 2: chains(j, std::integral_constant<int, 2>{}, last); break;
          case 3: chains(j, std::integral_constant<int, 3>{}, last); break;
          case 4: chains(j, std::integral_constant<int, 4>{}, last); break;
          default: break;
        }
      }
      return;
    }
    for (int64_t i = 0; i < a.OH; ++i) {
      for_each_vec(OW, [&](int64_t j, int cnt) { store_n(acc + j, Vec::zero(), cnt); });
      for (int64_t u = 0; u < a.kh; ++u) {
        const int64_t iy = i * a.sh - a.pt + u * a.dh;
        if (iy < 0 || iy >= a.H) continue;
        const float* row = xin + iy * a.W;
        for (int64_t v = 0; v < a.kw; ++v) {
          // pixel of output column j: j sw + off, inside the row for j in [lo, hi)
          const int64_t off = v * a.dw - a.pl;
          const int64_t lo = off >= 0 ? 0 : ceil_div(-off, a.sw);
          int64_t hi = a.W - 1 - off < 0 ? 0 : (a.W - 1 - off) / a.sw + 1;
          if (hi > OW) hi = OW;
          if (hi <= lo) continue;
          const float* src = row + lo * a.sw + off;
          if (a.sw != 1) {
            for (int64_t t = 0; t < hi - lo; ++t) gathered[t] = src[t * a.sw];
            src = gathered;
          }
          const Vec wv = Vec::broadcast(wo[u * a.kw + v]);
          float* acc_lo = acc + lo;
          for_each_vec(hi - lo, [&](int64_t j, int cnt) {
            store_n(acc_lo + j, fmadd(wv, load_n(src + j, cnt), load_n(acc_lo + j, cnt)), cnt);
          });
        }
      }
      float* yi = yo + i * OW;
      const float* ri = ro ? ro + i * OW : nullptr;
      for_each_vec(OW, [&](int64_t j, int cnt) {
        store_n(yi + j, conv_finish(load_n(acc + j, cnt), has_bias, b, a.activation,
                                    ri ? ri + j : nullptr, cnt), cnt);
      });
    }
  });
}

}  // namespace FASTATTN_ISA_NAMESPACE
}  // namespace fastattn

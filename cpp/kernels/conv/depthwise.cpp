// Depthwise conv2d (C / groups == 1: each output channel o reads the one input channel
// o / (Cout / groups)): too little work per output (kh kw products) for the GEMM, so a direct
// loop over output rows, vectorised along the row:
//   acc[j] = 0; for (u, v) in order: acc[j] += w[o, u, v] x[i sh - pt + u dh, j sw - pl + v dw]
// over the j where that pixel is inside the image (outside terms are zero and skipped), then
// y[i, j] = act(acc[j] + bias[o]) + residual[i, j]. The row accumulator (OW floats) stays in
// L1; a stride > 1 first gathers the taps' pixels into a contiguous row.
// Numerics: one float32 FMA chain of kh kw terms per output, in (u, v) order: error <=
// (kh kw + 2) u (|w| * |x|). Work is split over (image, channel) planes: bits independent of
// the thread count.
#include "core/parallel.h"
#include "kernels/conv/internal.h"

namespace fastattn {
namespace FASTATTN_ISA_NAMESPACE {

void conv2d_depthwise(const Conv2dArgs& a) {
  const int64_t mult = a.Cout / a.groups;  // output channels per input channel
  const int64_t planes = a.N * a.Cout, taps = a.kh * a.kw, OW = a.OW;
  const int64_t per_plane = a.OH * OW * (taps + 1);
  const int nt = conv_threads(static_cast<double>(planes) * static_cast<double>(per_plane));
  // acc (OW floats) + a gathered row for strided convolutions (OW floats)
  for_each_item(planes, nt, static_cast<std::size_t>(2 * OW), [&](int64_t plane, float* buf) {
    float* acc = buf;
    float* gathered = buf + OW;
    const int64_t n = plane / a.Cout, o = plane % a.Cout;
    const float* xin = a.x + (n * a.C + o / mult) * a.H * a.W;
    const float* wo = a.w + o * taps;
    float* yo = a.y + plane * a.OH * OW;
    const float* ro = a.residual ? a.residual + plane * a.OH * OW : nullptr;
    const bool has_bias = a.bias != nullptr;
    const Vec b = Vec::broadcast(has_bias ? a.bias[o] : 0.0f);
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

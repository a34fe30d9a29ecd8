// Packers of conv2d's B operand (implicit im2col): B[k, p] with k = (c, u, v) over the group's
// input channels and kernel taps, p = (i, j) over output pixels, is
//   x[c, i sh - pt + u dh, j sw - pl + v dw]   (0 outside the image),
// written straight into a kc x NR panel of the micro-kernel (dst[k * NR + jj], zero columns
// past n). B itself never exists. A panel's NR pixels run along output rows and may wrap to
// the next row: each row's run ("segment") is one contiguous read when sw == 1.
#pragma once

#ifndef FASTATTN_ISA_NAMESPACE
#error "kernels/conv/im2col.h is for kernel translation units (compiled per ISA)"
#endif

#include <cstdint>

#include "core/util.h"
#include "kernels/conv/gemm_driver.h"

namespace fastattn {
namespace FASTATTN_ISA_NAMESPACE {

// One image's group of input channels and the convolution's geometry.
struct Im2colGeometry {
  const float* x;  // (C', H, W): the first input channel of the group in image n
  int64_t H, W, kh, kw, sh, sw, pt, pl, dh, dw, OW;
};

inline void zero_floats(float* d, int64_t n) {
  for_each_vec(n, [&](int64_t i, int cnt) { store_n(d + i, Vec::zero(), cnt); });
}
inline void copy_floats(float* d, const float* s, int64_t n) {
  for_each_vec(n, [&](int64_t i, int cnt) { store_n(d + i, load_n(s + i, cnt), cnt); });
}

// The general packer: any stride, padding and dilation.
struct Im2colPacker {
  Im2colGeometry g;
  void operator()(int64_t k0, int64_t kc, int64_t j, int n, float* dst) const {
    constexpr int NR = kConvNR;
    const int64_t taps = g.kh * g.kw;
    int64_t c = k0 / taps, u = k0 % taps / g.kw, v = k0 % g.kw;
    const int64_t i0 = j / g.OW, j0 = j % g.OW;
    for (int64_t kk = 0; kk < kc; ++kk) {
      float* d = dst + kk * NR;
      const float* plane = g.x + c * g.H * g.W;
      int64_t i = i0, jo = j0;
      for (int jj = 0; jj < n; ++i, jo = 0) {  // one output row's run of pixels per pass
        const int len = static_cast<int>(g.OW - jo < n - jj ? g.OW - jo : n - jj);
        const int64_t iy = i * g.sh - g.pt + u * g.dh;
        if (iy < 0 || iy >= g.H) {
          zero_floats(d + jj, len);
        } else {
          const float* row = plane + iy * g.W;
          const int64_t ix0 = jo * g.sw - g.pl + v * g.dw;
          if (g.sw == 1) {  // pixels [lo, hi) of the run fall inside the row
            const int64_t lo = ix0 >= 0 ? 0 : (-ix0 < len ? -ix0 : len);
            int64_t hi = g.W - ix0 < len ? g.W - ix0 : len;
            if (hi < lo) hi = lo;
            zero_floats(d + jj, lo);
            copy_floats(d + jj + lo, row + ix0 + lo, hi - lo);
            zero_floats(d + jj + hi, len - hi);
          } else {
            for (int t = 0; t < len; ++t) {
              const int64_t ix = ix0 + t * g.sw;
              d[jj + t] = ix >= 0 && ix < g.W ? row[ix] : 0.0f;
            }
          }
        }
        jj += len;
      }
      zero_floats(d + n, NR - n);
      if (++v == g.kw) {
        v = 0;
        if (++u == g.kh) u = 0, ++c;
      }
    }
  }
};

// Kernel == stride, no padding, no dilation (patch embedding): every input pixel is read
// once (space-to-depth), B[(c, u, v), (i, j)] = x[c, i kh + u, j kw + v], no bounds.
struct PatchPacker {
  Im2colGeometry g;
  void operator()(int64_t k0, int64_t kc, int64_t j, int n, float* dst) const {
    constexpr int NR = kConvNR;
    const int64_t taps = g.kh * g.kw;
    int64_t c = k0 / taps, u = k0 % taps / g.kw, v = k0 % g.kw;
    const int64_t i0 = j / g.OW, j0 = j % g.OW;
    for (int64_t kk = 0; kk < kc; ++kk) {
      float* d = dst + kk * NR;
      const float* plane = g.x + c * g.H * g.W;
      int64_t i = i0, jo = j0;
      for (int jj = 0; jj < n; ++i, jo = 0) {
        const int len = static_cast<int>(g.OW - jo < n - jj ? g.OW - jo : n - jj);
        const float* src = plane + (i * g.kh + u) * g.W + jo * g.kw + v;
        for (int t = 0; t < len; ++t) d[jj + t] = src[t * g.kw];
        jj += len;
      }
      zero_floats(d + n, NR - n);
      if (++v == g.kw) {
        v = 0;
        if (++u == g.kh) u = 0, ++c;
      }
    }
  }
};

// A plain (K, P) matrix with row stride ld (a 1x1 convolution with stride 1 and no padding:
// the image's channels are B's rows).
struct MatrixPacker {
  const float* b;
  int64_t ld;
  void operator()(int64_t k0, int64_t kc, int64_t j, int n, float* dst) const {
    pack_b_panel<kConvNR>(kc, n, b + k0 * ld + j, ld, 1, dst);
  }
};

}  // namespace FASTATTN_ISA_NAMESPACE
}  // namespace fastattn

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

// B rows k0 .. k0 + kc - 1, row k = (c kh + u) kw + v, in runs that stop at the end of a tap
// row (fixed c, u): run(c, u, v, count, kk) with kk the run's first row relative to k0.
template <typename Run>
inline void for_each_tap_run(const Im2colGeometry& g, int64_t k0, int64_t kc, Run&& run) {
  const int64_t taps = g.kh * g.kw;
  int64_t c = k0 / taps, u = k0 % taps / g.kw, v = k0 % g.kw;
  for (int64_t kk = 0; kk < kc;) {
    const int64_t nv = g.kw - v < kc - kk ? g.kw - v : kc - kk;
    run(c, u, v, nv, kk);
    kk += nv;
    v = 0;
    if (++u == g.kh) u = 0, ++c;
  }
}

// The general packer: any stride, padding and dilation.
// Strided (sw = 2..4, more taps than the stride: ResNet's 7x7/2 stem and 3x3/2 layers): the
// taps v of one (c, u) read x[.., base + t sw + v dw] = phase (v dw) mod sw of the row at
// index t + (v dw) div sw, so the row's sw phases are gathered once per (c, u) and each tap
// is a contiguous copy: sw (len + shift) scalar reads instead of kw len.
template <int NR>
struct Im2colPacker {
  static constexpr int kMaxPhases = 4, kMaxShift = 32;
  Im2colGeometry g;

  bool phased() const {
    return g.sw > 1 && g.sw <= kMaxPhases && g.kw > g.sw && (g.kw - 1) * g.dw / g.sw < kMaxShift;
  }

  // B rows (c, u, v0 .. v0 + nv) of the panel at d, pixels [j, j + n), through the phases.
  void phase_rows(int64_t c, int64_t u, int64_t v0, int64_t nv, int64_t j, int n,
                  float* d) const {
    float ph[kMaxPhases][NR + kMaxShift];
    const float* plane = g.x + c * g.H * g.W;
    int64_t i = j / g.OW, jo = j % g.OW;
    for (int jj = 0; jj < n; ++i, jo = 0) {
      const int len = static_cast<int>(g.OW - jo < n - jj ? g.OW - jo : n - jj);
      const int64_t iy = i * g.sh - g.pt + u * g.dh;
      if (iy < 0 || iy >= g.H) {
        for (int64_t v = 0; v < nv; ++v) zero_floats(d + v * NR + jj, len);
      } else {
        const float* row = plane + iy * g.W;
        const int64_t base = jo * g.sw - g.pl;  // tap v of pixel t: base + t sw + v dw
        const int64_t span = len + (v0 + nv - 1) * g.dw / g.sw + 1;
        for (int64_t r = 0; r < g.sw; ++r)
          for (int64_t q = 0; q < span; ++q) {
            const int64_t ix = base + q * g.sw + r;
            ph[r][q] = ix >= 0 && ix < g.W ? row[ix] : 0.0f;
          }
        for (int64_t v = v0; v < v0 + nv; ++v) {
          const int64_t off = v * g.dw;
          copy_floats(d + (v - v0) * NR + jj, ph[off % g.sw] + off / g.sw, len);
        }
      }
      jj += len;
    }
    for (int64_t v = 0; v < nv; ++v) zero_floats(d + v * NR + n, NR - n);
  }

  void operator()(int64_t k0, int64_t kc, int64_t j, int n, float* dst) const {
    const int64_t taps = g.kh * g.kw;
    if (phased()) {
      for_each_tap_run(g, k0, kc, [&](int64_t c, int64_t u, int64_t v, int64_t nv, int64_t kk) {
        phase_rows(c, u, v, nv, j, n, dst + kk * NR);
      });
      return;
    }
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
          } else {  // pixels t in [lo, hi) read row[ix0 + t sw], inside the row
            const int64_t lo = ix0 >= 0 ? 0 : ceil_div(-ix0, g.sw);
            int64_t hi = g.W - 1 - ix0 < 0 ? 0 : (g.W - 1 - ix0) / g.sw + 1;
            if (hi > len) hi = len;
            if (hi < lo) hi = lo;
            const int64_t s = g.sw;
            float* dj = d + jj;
            for (int64_t t = 0; t < lo; ++t) dj[t] = 0.0f;
            for (int64_t t = lo; t < hi; ++t) dj[t] = row[ix0 + t * s];
            for (int64_t t = hi; t < len; ++t) dj[t] = 0.0f;
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
// once (space-to-depth), B[(c, u, v), (i, j)] = x[c, i kh + u, j kw + v], no bounds. For one
// (c, u) and one output row's run of pixels, the kw taps are a transpose: the run's input is
// the contiguous row segment x[c, i kh + u, j0 kw : (j0 + len) kw] read as a (len x kw)
// matrix, and B's kw rows are its columns. With AVX2 (and AVX-512) whole 8 x 8 blocks go
// through matmul's register transpose; the rest element by element.
template <int NR>
struct PatchPacker {
  Im2colGeometry g;

  // B rows (c, u, v0 .. v0 + nv) of the panel at d (row v0 first), pixels [j, j + n).
  void rows(int64_t c, int64_t u, int64_t v0, int64_t nv, int64_t j, int n, float* d) const {
    const float* plane = g.x + c * g.H * g.W;
    int64_t i = j / g.OW, jo = j % g.OW;
    for (int jj = 0; jj < n; ++i, jo = 0) {  // one output row's run of pixels per pass
      const int len = static_cast<int>(g.OW - jo < n - jj ? g.OW - jo : n - jj);
      const float* src = plane + (i * g.kh + u) * g.W + jo * g.kw;  // pixel t, tap v: t kw + v
      int t8 = 0;       // pixels [0, t8) x taps [0, v8) done by 8 x 8 transposes
      int64_t v8 = 0;
#if defined(__AVX2__)
      t8 = len / 8 * 8, v8 = nv / 8 * 8;
      for (int t = 0; t < t8; t += 8)
        for (int64_t v = 0; v < v8; v += 8)
          transpose8x8(src + t * g.kw + v0 + v, g.kw, d + v * NR + jj + t, NR);
#endif
      for (int64_t v = 0; v < nv; ++v)
        for (int t = v < v8 ? t8 : 0; t < len; ++t) d[v * NR + jj + t] = src[t * g.kw + v0 + v];
      jj += len;
    }
    for (int64_t v = 0; v < nv; ++v) zero_floats(d + v * NR + n, NR - n);
  }

  void operator()(int64_t k0, int64_t kc, int64_t j, int n, float* dst) const {
    for_each_tap_run(g, k0, kc, [&](int64_t c, int64_t u, int64_t v, int64_t nv, int64_t kk) {
      rows(c, u, v, nv, j, n, dst + kk * NR);
    });
  }
};

// A plain (K, P) matrix with row stride ld (a 1x1 convolution with stride 1 and no padding:
// the image's channels are B's rows).
template <int NR>
struct MatrixPacker {
  const float* b;
  int64_t ld;
  void operator()(int64_t k0, int64_t kc, int64_t j, int n, float* dst) const {
    pack_b_panel<NR>(kc, n, b + k0 * ld + j, ld, 1, dst);
  }
};

}  // namespace FASTATTN_ISA_NAMESPACE
}  // namespace fastattn

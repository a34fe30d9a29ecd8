// conv2d and conv_transpose2d on NCHW float32 (PyTorch's semantics), on the matmul
// micro-kernels.
//   conv2d:           y[n, o, i, j] = act(sum_{c, u, v} w[o, c, u, v]
//                                          x[n, g C' + c, i sh - pt + u dh, j sw - pl + v dw]
//                                         + bias[o]) + residual[n, o, i, j]
//                     (g = o / (Cout / groups), C' = C / groups, x = 0 outside the image)
//   conv_transpose2d: y[n, o, i, j] = bias[o] + sum over (c, a, b, u, v) with
//                     i = a sh - pt + u dh, j = b sw - pl + v dw of x[n, c, a, b] w[c, o', u, v]
//                     (c in o's group, o' = o mod (Cout / groups))
// Every array is C-contiguous (the bindings check it; the Python wrappers copy otherwise).
// The bindings also check every size against the arrays, so the kernels index without checks.
#pragma once

#include <cstdint>

#include "core/isa.h"
#include "kernels/activation.h"

namespace fastattn {

struct Conv2dArgs {
  const float* x;                // (N, C, H, W)
  int64_t N, C, H, W;
  const float* w;                // (Cout, C / groups, kh, kw)
  int64_t Cout, kh, kw;
  const float* bias;             // (Cout,) or null
  const float* residual;         // (N, Cout, OH, OW) or null
  Activation activation;
  float* y;                      // (N, Cout, OH, OW)
  int64_t OH, OW;
  int64_t sh, sw;                // stride >= 1
  int64_t pt, pl;                // padding at the top and left (bottom / right follow from OH, OW)
  int64_t dh, dw;                // dilation >= 1
  int64_t groups;                // divides C and Cout
};

struct ConvTranspose2dArgs {
  const float* x;                // (N, C, H, W)
  int64_t N, C, H, W;
  const float* w;                // (C, Cout / groups, kh, kw)
  int64_t Cout, kh, kw;
  const float* bias;             // (Cout,) or null
  float* y;                      // (N, Cout, OH, OW)
  int64_t OH, OW;
  int64_t sh, sw, pt, pl, dh, dw, groups;
};

struct ConvKernels {
  void (*conv2d)(const Conv2dArgs& a) = nullptr;
  void (*conv_transpose2d)(const ConvTranspose2dArgs& a) = nullptr;
};
FASTATTN_DECLARE_KERNEL_TABLE(ConvKernels)

}  // namespace fastattn

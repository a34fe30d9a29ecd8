// Separable 2-D resampling of NCHW planes: the one kernel behind max_pool2d,
// adaptive_avg_pool2d and interpolate (nearest, bilinear, bicubic, antialiased).
//
// Every output pixel (i, j) of a plane is a reduction over a rectangle of taps, the product of
// a row tap list (for output row i) and a column tap list (for output column j):
//   sum: out[i][j] = sum_a sum_b  wy[i][a] wx[j][b] x[ry[i][a]][cx[j][b]]
//   max: out[i][j] = max_a max_b  x[ry[i][a]][cx[j][b]]   (NaN if any tap is NaN; -inf if none)
// Tap tables have a fixed width per axis (ky, kx); an index of -1 is "no tap" (a window
// partly in max-pool padding, an antialiasing window shorter than the widest one). The
// Python wrappers build the tables (fastattn/ops/resample_taps.py): which pixels, which
// weights, so every op's exact rule lives in one readable place and the kernel only applies it.
#pragma once

#include <cstdint>

#include "core/isa.h"

namespace fastattn {

enum class ResampleReduce : int { sum = 0, max = 1 };

struct ResampleKernels {
  // x: (planes, H, W) C-contiguous; out: (planes, OH, OW) C-contiguous, apart from x.
  // row_index (OH, ky) in [-1, H), col_index (OW, kx) in [-1, W); row_weight / col_weight of the
  // same shapes for sum (ignored for max, may be null).
  void (*resample)(const float* x, float* out, int64_t planes, int64_t H, int64_t W,
                   int64_t OH, int64_t OW, const int64_t* row_index, const float* row_weight,
                   int64_t ky, const int64_t* col_index, const float* col_weight, int64_t kx,
                   ResampleReduce reduce) = nullptr;
};
FASTATTN_DECLARE_KERNEL_TABLE(ResampleKernels)

}  // namespace fastattn

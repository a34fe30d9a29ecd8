// Normalisation over the last axis of a 2-D float32 view.
//   layer_norm(x) = (x - mean) / sqrt(var + eps) * w + b,  var = mean((x - mean)^2)  (two-pass)
//   rms_norm(x)   = x / sqrt(mean(x^2) + eps) * w
// w and b may be null (no affine transform / no bias).
#pragma once

#include <cstdint>

#include "core/isa.h"

namespace fastattn {

struct NormKernels {
  void (*layer_norm)(const float* x, int64_t ldx, float* y, int64_t ldy, int64_t rows, int64_t n,
                     const float* w, const float* b, float eps) = nullptr;
  void (*rms_norm)(const float* x, int64_t ldx, float* y, int64_t ldy, int64_t rows, int64_t n,
                   const float* w, float eps) = nullptr;
};
FASTATTN_DECLARE_KERNEL_TABLE(NormKernels)

}  // namespace fastattn

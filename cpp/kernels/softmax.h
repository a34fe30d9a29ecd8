// softmax / log_softmax over the rows of a 2-D float32 view.
//   softmax(x)_i     = exp(x_i - m) / sum_j exp(x_j - m),   m = max_j x_j
//   log_softmax(x)_i = (x_i - m) - log(sum_j exp(x_j - m))
// A row that is entirely -inf has no finite maximum: softmax gives zeros, log_softmax -inf.
#pragma once

#include <cstdint>

#include "core/isa.h"

namespace fastattn {

struct SoftmaxKernels {
  // Rows start at x + r * ldx and y + r * ldy (strides in elements, may be negative); each row
  // holds n contiguous floats. y may equal x (in place).
  void (*softmax)(const float* x, int64_t ldx, float* y, int64_t ldy, int64_t rows, int64_t n,
                  bool log) = nullptr;
};
FASTATTN_DECLARE_KERNEL_TABLE(SoftmaxKernels)

}  // namespace fastattn

// The SIMD exp / erfc element-wise, exposed (privately, as fastattn._core.vector_math) so the
// tests can measure their error on every ISA path.
#pragma once

#include <cstdint>

#include "core/isa.h"

namespace fastattn {

struct VectorMathKernels {
  void (*exp)(const float* x, float* y, int64_t n) = nullptr;
  void (*erfc)(const float* x, float* y, int64_t n) = nullptr;  // x >= 0
};
FASTATTN_DECLARE_KERNEL_TABLE(VectorMathKernels)

}  // namespace fastattn

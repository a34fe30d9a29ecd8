// Element-wise activations over n contiguous float32 values (y may equal x).
//   relu(x)      = max(x, 0)
//   gelu(x)      = x/2 (1 + erf(x / sqrt 2))                      ("gelu", exact)
//   gelu_tanh(x) = x/2 (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))  ("gelu_new", "gelu_pytorch_tanh")
//   silu(x)      = x sigmoid(x)
//   swiglu(g, u) = silu(g) * u
#pragma once

#include <cstdint>

#include "core/isa.h"

namespace fastattn {

enum class Activation : int { none = 0, relu = 1, gelu = 2, gelu_tanh = 3, silu = 4 };

struct ActivationKernels {
  void (*apply)(Activation kind, const float* x, float* y, int64_t n) = nullptr;
  void (*swiglu)(const float* gate, const float* up, float* y, int64_t n) = nullptr;
};
FASTATTN_DECLARE_KERNEL_TABLE(ActivationKernels)

}  // namespace fastattn

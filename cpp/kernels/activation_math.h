// Activation formulas on one Vec, shared by the element-wise kernels and the matmul epilogue
// (matmul/microkernel.h). Kernel translation units only.
#pragma once

#include "core/vec_math.h"
#include "kernels/activation.h"

namespace fastattn {
namespace FASTATTN_ISA_NAMESPACE {

// gelu(x) = x/2 * (1 + erf(x/sqrt2)) written with e = erfc(|x|/sqrt2) so that the negative tail,
// where 1 + erf(x/sqrt2) = e is tiny, keeps its relative accuracy (no 1 - (1 - e) cancellation):
//   x >= 0: x/2 * (2 - e);   x < 0: x/2 * e.
inline Vec gelu_exact(Vec x) {
  const Vec e = erfc_nonnegative(abs(x) * Vec::broadcast(0.70710678118654752f));
  const Vec f = if_negative(x, e, Vec::broadcast(2.0f) - e);
  return Vec::broadcast(0.5f) * x * f;
}

// x/2 (1 + tanh(u)) = x * sigmoid(2u): the same value without tanh's cancellation near u < 0.
inline Vec gelu_tanh(Vec x) {
  const Vec u2 = Vec::broadcast(2.0f * 0.7978845608028654f) *
                 fmadd(Vec::broadcast(0.044715f) * x, x * x, x);
  return x * sigmoid(u2);
}

inline Vec silu(Vec x) { return x * sigmoid(x); }

// relu with max(x, 0): NaN stays NaN (second operand of max is x).
inline Vec relu(Vec x) { return max(Vec::zero(), x); }

template <Activation kind>
inline Vec activate(Vec x) {
  if constexpr (kind == Activation::relu) return relu(x);
  else if constexpr (kind == Activation::gelu) return gelu_exact(x);
  else if constexpr (kind == Activation::gelu_tanh) return gelu_tanh(x);
  else if constexpr (kind == Activation::silu) return silu(x);
  else return x;
}

}  // namespace FASTATTN_ISA_NAMESPACE
}  // namespace fastattn

// Activation formulas on one Vec, shared by the element-wise kernels and the matmul epilogue
// (matmul/microkernel.h). Kernel translation units only.
#pragma once

#include "core/vec_math.h"
#include "kernels/activation.h"

namespace fastattn {
namespace FASTATTN_ISA_NAMESPACE {

// gelu(x) = x Phi(x), Phi the standard normal CDF (= (1 + erf(x/sqrt2)) / 2), written with the
// normal tail Q (core/vec_math.h) at a = |x|: Phi(x) = 1 - Q(a) for x >= 0, Q(a) for x < 0, so
//   gelu(x) = max(x, 0) - a Q(a) = max(x, 0) - w exp(P(w) - a^2/2),   w = a / (2 + a/2).
// No 1 + erf cancellation: the negative tail (x Q(a), tiny) keeps its relative accuracy; for
// x >= 0 the subtracted a Q(a) is at most x/2. One division, one exp, no branch, no select:
// - a is clamped to 13.1, where a Q(a) ~ 2e-38: the exponent stays above ln 2^-126, so
//   exp_nonpositive needs no clamp; beyond it the true a Q(a) is below 2e-38 and the result
//   is off by less than 2.3e-38 absolute (exactly x for x > 13.1);
// - max(x, 0) is written x - min(x, 0): +inf gives inf, and -inf gives -inf - -inf = NaN, the
//   formula's -inf * 0 (PyTorch and the reference agree); NaN stays NaN (min returns its
//   second operand, 0, and NaN - 0 = NaN).
// (A division-free w, a cubic 1/d refined by Halley + Newton, was 5% faster on AVX-512 and
// 25% slower on AVX2, whose 8-lane divider is relatively cheaper: not kept.)
// Templated over Vec / VecN (the element-wise kernel interleaves several vectors,
// activation.cpp).
template <class V>
FASTATTN_INLINE_ALWAYS V gelu_exact(V x) {
  const V a = min(V::broadcast(13.1f), abs(x));
  const V w = a / fmadd(V::broadcast(0.5f), a, V::broadcast(2.0f));
  const V t = exp_nonpositive(fmadd(a * V::broadcast(-0.5f), a, normal_tail_poly(w)));
  return fnmadd(w, t, x - min(x, V::zero()));
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

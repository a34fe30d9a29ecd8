// Transcendental functions on Vec: exp, erfc, sigmoid. One definition for every ISA.
//
// Accuracy, measured by tests/test_vector_math.py against float64 NumPy over the ranges below
// (docs/numerics.md quotes the figures):
//   exp(x)     Cody-Waite reduction + Cephes degree-6 polynomial. Max relative error ~2 ulp
//              (<= 2.4e-7) for x in [-87.3, 88.7]. exp(x) < 2^-125 (~2.4e-38) flushes to 0,
//              x > 88.72 gives +inf, -inf gives 0, NaN gives NaN.
//   erfc(z)    z >= 0. Numerical Recipes' Chebyshev fit erfc(z) = t exp(-z^2 + P(t)),
//              t = 1 / (1 + z/2), fractional error < 1.2e-7 in exact arithmetic; in float32
//              the -z^2 term adds ~z^2 * 6e-8 relative, inherent to float32 exp.
//   sigmoid(x) 1 / (1 + exp(-x)): relative error <= exp's + 2 ulp, for all x (no cancellation).
#pragma once

#include "core/util.h"  // Vec, load_n / store_n / for_each_vec

namespace fastattn {
namespace FASTATTN_ISA_NAMESPACE {

inline Vec exp(Vec x) {
  // Clamp (operand order keeps NaN: max/min return the second operand on NaN). Below
  // ln(2^-126) the result flushes to 0; at 88.8 the scaling below overflows to +inf.
  x = min(Vec::broadcast(88.8f), max(Vec::broadcast(-87.33654475f), x));
  // x = n ln2 + r, |r| <= ln2 / 2; ln2 split in a part with few mantissa bits (n * c1 exact)
  // and a correction.
  const Vec n = round_nearest(x * Vec::broadcast(1.44269504088896341f));
  Vec r = fnmadd(n, Vec::broadcast(0.693359375f), x);
  r = fnmadd(n, Vec::broadcast(-2.12194440e-4f), r);
  // e^r = 1 + r + r^2 P(r)
  Vec p = Vec::broadcast(1.9875691500e-4f);
  p = fmadd(p, r, Vec::broadcast(1.3981999507e-3f));
  p = fmadd(p, r, Vec::broadcast(8.3334519073e-3f));
  p = fmadd(p, r, Vec::broadcast(4.1665795894e-2f));
  p = fmadd(p, r, Vec::broadcast(1.6666665459e-1f));
  p = fmadd(p, r, Vec::broadcast(5.0000001201e-1f));
  p = fmadd(p, r * r, r + Vec::broadcast(1.0f));
  // e^x = (2 e^r) * 2^(n-1): n-1 keeps n = 128 (x near ln FLT_MAX) inside the exponent range.
  return (p + p) * pow2_int(n - Vec::broadcast(1.0f));
}

// erfc(z) for z >= 0.
inline Vec erfc_nonnegative(Vec z) {
  const Vec one = Vec::broadcast(1.0f);
  const Vec t = one / fmadd(Vec::broadcast(0.5f), z, one);
  Vec p = Vec::broadcast(0.17087277f);
  p = fmadd(p, t, Vec::broadcast(-0.82215223f));
  p = fmadd(p, t, Vec::broadcast(1.48851587f));
  p = fmadd(p, t, Vec::broadcast(-1.13520398f));
  p = fmadd(p, t, Vec::broadcast(0.27886807f));
  p = fmadd(p, t, Vec::broadcast(-0.18628806f));
  p = fmadd(p, t, Vec::broadcast(0.09678418f));
  p = fmadd(p, t, Vec::broadcast(0.37409196f));
  p = fmadd(p, t, Vec::broadcast(1.00002368f));
  p = fmadd(p, t, Vec::broadcast(-1.26551223f));
  return t * exp(fnmadd(z, z, p));  // t * exp(P(t) - z^2)
}

inline Vec sigmoid(Vec x) {
  const Vec one = Vec::broadcast(1.0f);
  return one / (one + exp(Vec::zero() - x));
}

}  // namespace FASTATTN_ISA_NAMESPACE
}  // namespace fastattn

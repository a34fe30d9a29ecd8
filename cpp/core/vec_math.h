// Transcendental functions on Vec: exp, erfc, sigmoid. One definition for every ISA.
//
// Accuracy, measured by tests/test_vector_math.py against float64 NumPy over the ranges below
// (docs/numerics.md quotes the figures):
//   exp(x)     Cody-Waite reduction + Cephes degree-6 polynomial. Max relative error ~2 ulp
//              (<= 2.4e-7) for x in [-87.3, 88.7]. exp(x) < 2^-125 (~2.4e-38) flushes to 0,
//              x > 88.72 gives +inf, -inf gives 0, NaN gives NaN.
//   erfc(z)    z >= 0, through normal_tail below: erfc(z) = t exp(P(w) - z^2). Max relative
//              error 3e-7 (1 + z^2) over [0, 9] (the z^2 term is float32 exp's own
//              conditioning: exp of a float argument of size z^2).
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

// The VecN formulas must be inlined: a call passes a VecN through memory (4 x 64 bytes each
// way), which costs more than the formula. GCC's heuristics decline these larger templates.
#if defined(__GNUC__)
#define FASTATTN_INLINE_ALWAYS inline __attribute__((always_inline))
#else
#define FASTATTN_INLINE_ALWAYS inline
#endif

// VecN<N>: N Vecs that every operation below treats lane-wise, one after the other. A formula
// written once as a template over V (Vec or VecN) then runs N independent copies interleaved
// instruction by instruction. Why: the exact GELU is one dependency chain of ~30 operations
// (~110 cycles of latency, a division among them); out-of-order hardware overlaps only the
// 2-3 copies its scheduler holds, so one Vec at a time runs at a third of the FMA ports'
// throughput. Interleaving N = 4-8 copies in the source fills the ports (activation.cpp,
// the matmul epilogue).
template <int N>
struct VecN {
  Vec v[N];
  static VecN broadcast(float a) { VecN r; for (int k = 0; k < N; ++k) r.v[k] = Vec::broadcast(a); return r; }
  static VecN zero() { return broadcast(0.0f); }
  static VecN load(const float* p) {
    VecN r; for (int k = 0; k < N; ++k) r.v[k] = Vec::load(p + k * Vec::size); return r;
  }
  void store(float* p) const { for (int k = 0; k < N; ++k) v[k].store(p + k * Vec::size); }
  void stream(float* p) const { for (int k = 0; k < N; ++k) v[k].stream(p + k * Vec::size); }
};
#define FASTATTN_VECN_MAP1(name)                                           \
  template <int N> inline VecN<N> name(VecN<N> a) {                         \
    VecN<N> r; for (int k = 0; k < N; ++k) r.v[k] = name(a.v[k]); return r; }
#define FASTATTN_VECN_MAP2(name)                                           \
  template <int N> inline VecN<N> name(VecN<N> a, VecN<N> b) {              \
    VecN<N> r; for (int k = 0; k < N; ++k) r.v[k] = name(a.v[k], b.v[k]); return r; }
#define FASTATTN_VECN_MAP3(name)                                                   \
  template <int N> inline VecN<N> name(VecN<N> a, VecN<N> b, VecN<N> c) {           \
    VecN<N> r; for (int k = 0; k < N; ++k) r.v[k] = name(a.v[k], b.v[k], c.v[k]); return r; }
FASTATTN_VECN_MAP1(abs)
FASTATTN_VECN_MAP1(pow2_int)
FASTATTN_VECN_MAP2(operator+)
FASTATTN_VECN_MAP2(operator-)
FASTATTN_VECN_MAP2(operator*)
FASTATTN_VECN_MAP2(operator/)
FASTATTN_VECN_MAP2(max)
FASTATTN_VECN_MAP2(min)
FASTATTN_VECN_MAP3(fmadd)
FASTATTN_VECN_MAP3(fnmadd)
#undef FASTATTN_VECN_MAP1
#undef FASTATTN_VECN_MAP2
#undef FASTATTN_VECN_MAP3

// e^v for v in [ln 2^-126, ~0.01] (the normal tail's exponent below), leaner than exp: no
// clamps (callers keep v in range: below it pow2_int would wrap), one-constant reduction,
// degree-5 polynomial. NaN gives NaN.
//   n = round(v / ln2) by the 1.5 * 2^23 shift (exact rounding for |v / ln2| < 2^22);
//   r = v - n ln2 with ln2 in float: the error n * 1.9e-9 (<= 2.4e-7 at n = -126) stays
//       below the rounding of v itself (|v| 2^-24), which the caller's bound already counts;
//   e^r = 1 + r P(r), P of degree 4 fitted (Lawson minimax) on |r| <= ln2 / 2: relative
//       error 9.1e-8 in exact arithmetic.
template <class V>
FASTATTN_INLINE_ALWAYS V exp_nonpositive(V v) {
  const V shift = V::broadcast(12582912.0f);  // 1.5 * 2^23
  const V n = fmadd(v, V::broadcast(1.44269504088896341f), shift) - shift;
  const V r = fnmadd(n, V::broadcast(0.693147180559945f), v);
  V p = V::broadcast(8.290314762e-3f);
  p = fmadd(p, r, V::broadcast(4.189793109e-2f));
  p = fmadd(p, r, V::broadcast(1.666763621e-1f));
  p = fmadd(p, r, V::broadcast(4.999914952e-1f));
  p = fmadd(p, r, V::broadcast(9.999997072e-1f));
  p = fmadd(p, r, V::broadcast(1.0f));
  return p * pow2_int(n);
}

// The upper tail of the standard normal distribution, Q(a) = P(X > a) = erfc(a / sqrt2) / 2
// for a >= 0, in the factored form the exact GELU and erfc share. With w = a / (2 + a/2):
//   a Q(a) = w exp(P(w) - a^2/2),   P(w) = ln((1 + a/4) erfcx(a / sqrt2)),
// erfcx(z) = e^(z^2) erfc(z). P is smooth on w in [0, 2) (a in [0, inf)); fitted with degree 8
// (Lawson minimax, weight 1 / (1 + a^2/2)) on a in [0, 13.2], beyond which Q(a) < 2^-126:
// error 1.2e-8 (1 + a^2/2) in exact arithmetic. The factor (1 + a/4) = 1 / t is what makes
// P bounded (erfcx(z) ~ 1 / (z sqrt pi)); the scale 1/4 gave the lowest degree for that error.
// No 1 - erf cancellation anywhere: the tail keeps its relative accuracy down to 2^-126.
// Callers form the exponent with one FMA, fma(-a/2, a, P(w)): the square is exact inside it.
template <class V>
FASTATTN_INLINE_ALWAYS V normal_tail_poly(V w) {
  V p = V::broadcast(-1.165720160e-3f);
  p = fmadd(p, w, V::broadcast(5.966581750e-3f));
  p = fmadd(p, w, V::broadcast(-6.712099259e-3f));
  p = fmadd(p, w, V::broadcast(-1.018909819e-2f));
  p = fmadd(p, w, V::broadcast(1.388609661e-3f));
  p = fmadd(p, w, V::broadcast(7.878740929e-2f));
  p = fmadd(p, w, V::broadcast(5.388740702e-2f));
  p = fmadd(p, w, V::broadcast(-1.095770122e+0f));
  return fmadd(p, w, V::broadcast(1.218684831e-8f));
}

// erfc(z) for z >= 0: with a = z sqrt2, erfc(z) = 2 Q(a) = t exp(P(w) - z^2), t = 1/(1 + a/4),
// w = a t / 2 (the exponent's -a^2/2 written as -z^2, exact inside the FMA).
inline Vec erfc_nonnegative(Vec z) {
  const Vec a = z * Vec::broadcast(1.41421356237309505f);
  const Vec t = Vec::broadcast(1.0f) / fmadd(Vec::broadcast(0.25f), a, Vec::broadcast(1.0f));
  const Vec w = Vec::broadcast(0.5f) * a * t;
  // max(lo, v): below ln 2^-126 erfc flushes toward 2^-126 t; NaN stays NaN (second operand)
  const Vec v = max(Vec::broadcast(-87.33654475f), fnmadd(z, z, normal_tail_poly(w)));
  return t * exp_nonpositive(v);
}

inline Vec sigmoid(Vec x) {
  const Vec one = Vec::broadcast(1.0f);
  return one / (one + exp(Vec::zero() - x));
}

}  // namespace FASTATTN_ISA_NAMESPACE
}  // namespace fastattn

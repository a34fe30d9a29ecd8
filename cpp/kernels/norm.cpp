// layer_norm / rms_norm, one row per thread-iteration. Statistics use the compensated blocked
// sum (core/reduce.h). layer_norm stays accurate when |mean| >> std:
//   m1   = sum(x) / n                 error ~ |mean| * 20 eps: large next to a small std
//   c    = sum(x - m1) / n            x - m1 is exact (Sterbenz) when x is near m1
//   mean = m1 + c, kept as the pair (m1, c): rounded to one float it would again be off by
//          half an ulp of |mean|, so every use computes (x - m1) - c
//   var  = sum(((x - m1) - c)^2) / n  two-pass (the one-pass E[x^2] - mean^2 cancels)
// The 1/sqrt is taken in double on the float32 statistic: one rounding.
//
// Overflow: the float32 squares overflow for |x| >~ 1.8e19 (and sum(x) near FLT_MAX), which
// would normalise a finite row to 0 or NaN. Such a row's statistic comes out inf or NaN; only
// then is the row redone on x s, with s = 2^-e the power of two that brings max|x| into
// [0.5, 1) (exact: only elements 2^149 times below the maximum lose bits), using
//   y = (x s - mean(x s)) / sqrt(var(x s) + eps s^2)    (and likewise for rms_norm).
// The common path pays one isfinite test per row; a row holding inf or NaN stays NaN.
#include "kernels/norm.h"

#include <cmath>
#include <limits>

#include "core/parallel.h"
#include "core/reduce.h"
#include "core/row_writer.h"
#include "core/util.h"

namespace fastattn {
namespace FASTATTN_ISA_NAMESPACE {
namespace {

// x[i, i + cnt) of a row, times the power of two s when kScaled (the overflow path); lanes
// >= cnt hold `fill` on the common path, 0 on the scaled one (fill / s could overflow), so
// there the caller masks what it sums.
template <bool kScaled>
inline Vec load_row(const float* x, int64_t i, int cnt, float fill, Vec s) {
  if constexpr (kScaled) return load_n(x + i, cnt) * s;
  else return load_n(x + i, cnt, fill);
}
template <bool kScaled>
inline Vec zero_past(Vec v, int cnt) {
  return !kScaled || cnt == Vec::size ? v : keep_first(v, cnt);
}

// y = ((x [* s] - shift_hi) - shift_lo) * scale [* w] [+ b] over one row.
template <bool kScaled>
void normalize_row(const float* x, float* y, int64_t n, float s, float shift_hi,
                   float shift_lo, float scale, const float* w, const float* b, bool streaming) {
  const Vec hi = Vec::broadcast(shift_hi), lo = Vec::broadcast(shift_lo);
  const Vec vk = Vec::broadcast(scale), vs = Vec::broadcast(s);
  write_row(y, n, streaming, [&](int64_t i, int cnt) {
    Vec v = ((load_row<kScaled>(x, i, cnt, 0.0f, vs) - hi) - lo) * vk;
    if (w) v = v * load_n(w + i, cnt);
    if (b) v = v + load_n(b + i, cnt);
    return v;
  });
}

int64_t row_grain(int64_t n) { return grain_items(n, kGrainFloats); }

// The power of two s = 2^-e with max|x| s in [0.5, 1); 0 when max|x| is 0, inf or NaN.
float overflow_prescale(const float* x, int64_t n) {
  Vec m = Vec::zero();
  for_each_vec(n, [&](int64_t i, int cnt) { m = max(m, abs(load_n(x + i, cnt))); });
  const float amax = hmax(m);
  if (!(amax > 0.0f) || !std::isfinite(amax)) return 0.0f;
  int e;
  std::frexp(amax, &e);  // amax = f 2^e, f in [0.5, 1)
  return std::ldexp(1.0f, -e);
}

// The statistic's other edge: squares below FLT_MIN (2^-126) are subnormal or flush to 0, so a
// row of |x| ~ 1e-22 has a variance with few or no significant bits. That matters only when
// eps does not dominate it: var + eps < FLT_MIN. Such a row also takes the scaled path (x s
// with max|x| s in [0.5, 1): normal squares; eps s^2 keeps the result the same).
inline bool needs_underflow_rescale(float stat, float eps) {
  return static_cast<double>(stat) + eps < static_cast<double>(std::numeric_limits<float>::min());
}

// layer_norm of one row (x times s when kScaled): the statistics of the header, then y. A
// variance that is not finite on the common path (overflow, or inf / NaN in x) sends the row
// to the scaled path when max|x| is finite.
template <bool kScaled>
void layer_norm_row(const float* xr, float* yr, int64_t n, float s, const float* w,
                    const float* b, float eps, const float* next, bool streaming) {
  const Vec vs = Vec::broadcast(s);
  const float m1 =
      blocked_sum(n, [&](int64_t i, int cnt) { return load_row<kScaled>(xr, i, cnt, 0.0f, vs); }) /
      n;
  const Vec vm1 = Vec::broadcast(m1);
  // common path: masked lanes load m1, so they contribute m1 - m1 = 0
  const float c = blocked_sum(n, [&](int64_t i, int cnt) {
                    prefetch_next_row(next, i);
                    return zero_past<kScaled>(load_row<kScaled>(xr, i, cnt, m1, vs) - vm1, cnt);
                  }) / n;
  const Vec vc = Vec::broadcast(c);
  const float var = blocked_sum(n, [&](int64_t i, int cnt) {
                      const Vec d = (load_row<kScaled>(xr, i, cnt, m1, vs) - vm1) - vc;
                      return cnt == Vec::size ? d * d : keep_first(d * d, cnt);
                    }) / n;
  if constexpr (!kScaled) {
    if (!std::isfinite(var) || needs_underflow_rescale(var, eps)) {
      const float ps = overflow_prescale(xr, n);
      if (ps > 0.0f) return layer_norm_row<true>(xr, yr, n, ps, w, b, eps, nullptr, streaming);
    }
  }
  const double eps_s = kScaled ? static_cast<double>(eps) * s * s : eps;
  double rstd = 1.0 / std::sqrt(static_cast<double>(var) + eps_s);
  // scaled: a constant row has var = 0 and eps s^2 ~ 1e-83, so rstd would round to inf and
  // 0 * inf give NaN; any nonzero deviation d keeps d rstd <= sqrt(n), so clamping is exact.
  // With eps = 0 a constant row is 0 / 0 (NaN), as the formula says: no clamp.
  constexpr double kFloatMax = std::numeric_limits<float>::max();
  if (kScaled && rstd > kFloatMax && eps_s > 0.0) rstd = kFloatMax;
  normalize_row<kScaled>(xr, yr, n, s, m1, c, static_cast<float>(rstd), w, b, streaming);
}

// rms_norm of one row (x times s when kScaled), the overflow path as in layer_norm_row.
template <bool kScaled>
void rms_norm_row(const float* xr, float* yr, int64_t n, float s, const float* w, float eps,
                  bool streaming) {
  const Vec vs = Vec::broadcast(s);
  const float ms = blocked_sum(n, [&](int64_t i, int cnt) {
                     const Vec v = load_row<kScaled>(xr, i, cnt, 0.0f, vs);
                     return v * v;
                   }) / n;
  if constexpr (!kScaled) {
    if (!std::isfinite(ms) || needs_underflow_rescale(ms, eps)) {
      const float ps = overflow_prescale(xr, n);
      if (ps > 0.0f) return rms_norm_row<true>(xr, yr, n, ps, w, eps, streaming);
    }
  }
  const double eps_s = kScaled ? static_cast<double>(eps) * s * s : eps;
  const float rstd = static_cast<float>(1.0 / std::sqrt(static_cast<double>(ms) + eps_s));
  normalize_row<kScaled>(xr, yr, n, s, 0.0f, 0.0f, rstd, w, nullptr, streaming);
}

void layer_norm_rows(const float* x, int64_t ldx, float* y, int64_t ldy, int64_t rows, int64_t n,
                     const float* w, const float* b, float eps) {
  if (n == 0) return;
  const bool streaming = should_stream(rows * n);
  parallel_for(rows, row_grain(n), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const float* xr = x + r * ldx;
      float* yr = y + r * ldy;
      const float* next = r + 1 < r1 ? xr + ldx : nullptr;
      layer_norm_row<false>(xr, yr, n, 1.0f, w, b, eps, next, streaming);
    }
    if (streaming) stream_fence();
  });
}

void rms_norm_rows(const float* x, int64_t ldx, float* y, int64_t ldy, int64_t rows, int64_t n,
                   const float* w, float eps) {
  if (n == 0) return;
  const bool streaming = should_stream(rows * n);
  parallel_for(rows, row_grain(n), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const float* xr = x + r * ldx;
      float* yr = y + r * ldy;
      rms_norm_row<false>(xr, yr, n, 1.0f, w, eps, streaming);
    }
    if (streaming) stream_fence();
  });
}

}  // namespace

void register_kernels(NormKernels& t, Tag) {
  t.layer_norm = layer_norm_rows;
  t.rms_norm = rms_norm_rows;
}

}  // namespace FASTATTN_ISA_NAMESPACE
}  // namespace fastattn

// layer_norm / rms_norm, one row per thread-iteration. Statistics use the compensated blocked
// sum (core/reduce.h). layer_norm stays accurate when |mean| >> std:
//   m1   = sum(x) / n                 error ~ |mean| * 20 eps: large next to a small std
//   c    = sum(x - m1) / n            x - m1 is exact (Sterbenz) when x is near m1
//   mean = m1 + c, kept as the pair (m1, c): rounded to one float it would again be off by
//          half an ulp of |mean|, so every use computes (x - m1) - c
//   var  = sum(((x - m1) - c)^2) / n  two-pass (the one-pass E[x^2] - mean^2 cancels)
// The 1/sqrt is taken in double on the float32 statistic: one rounding.
#include "kernels/norm.h"

#include <cmath>

#include "core/parallel.h"
#include "core/reduce.h"
#include "core/row_writer.h"
#include "core/util.h"

namespace fastattn {
namespace FASTATTN_ISA_NAMESPACE {
namespace {

// y = ((x - shift_hi) - shift_lo) * scale [* w] [+ b] over one row.
void normalize_row(const float* x, float* y, int64_t n, float shift_hi, float shift_lo,
                   float scale, const float* w, const float* b, bool streaming) {
  const Vec hi = Vec::broadcast(shift_hi), lo = Vec::broadcast(shift_lo);
  const Vec vk = Vec::broadcast(scale);
  write_row(y, n, streaming, [&](int64_t i, int cnt) {
    Vec v = ((load_n(x + i, cnt) - hi) - lo) * vk;
    if (w) v = v * load_n(w + i, cnt);
    if (b) v = v + load_n(b + i, cnt);
    return v;
  });
}

int64_t row_grain(int64_t n) { return grain_items(n, kGrainFloats); }

void layer_norm_rows(const float* x, int64_t ldx, float* y, int64_t ldy, int64_t rows, int64_t n,
                     const float* w, const float* b, float eps) {
  if (n == 0) return;
  const bool streaming = should_stream(rows * n);
  parallel_for(rows, row_grain(n), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const float* xr = x + r * ldx;
      const float m1 =
          blocked_sum(n, [&](int64_t i, int cnt) { return load_n(xr + i, cnt); }) / n;
      const Vec vm1 = Vec::broadcast(m1);
      // masked lanes load m1, so they contribute m1 - m1 = 0
      const float* next = r + 1 < r1 ? xr + ldx : nullptr;
      const float c = blocked_sum(n, [&](int64_t i, int cnt) {
                        prefetch_next_row(next, i);
                        return load_n(xr + i, cnt, m1) - vm1;
                      }) / n;
      const Vec vc = Vec::broadcast(c);
      const float var = blocked_sum(n, [&](int64_t i, int cnt) {
                          const Vec d = (load_n(xr + i, cnt, m1) - vm1) - vc;
                          return cnt == Vec::size ? d * d : keep_first(d * d, cnt);
                        }) / n;
      const float rstd = static_cast<float>(1.0 / std::sqrt(static_cast<double>(var) + eps));
      normalize_row(xr, y + r * ldy, n, m1, c, rstd, w, b, streaming);
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
      const float ms = blocked_sum(n, [&](int64_t i, int cnt) {
                         const Vec v = load_n(xr + i, cnt);
                         return v * v;
                       }) / n;
      const float rstd = static_cast<float>(1.0 / std::sqrt(static_cast<double>(ms) + eps));
      normalize_row(xr, y + r * ldy, n, 0.0f, 0.0f, rstd, w, nullptr, streaming);
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

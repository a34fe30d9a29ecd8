// layer_norm / rms_norm, one row per thread-iteration. Statistics use the compensated blocked
// sum (core/reduce.h); layer_norm's variance is the two-pass mean((x - mean)^2), which stays
// accurate when |mean| >> std (the one-pass E[x^2] - mean^2 cancels catastrophically).
// The 1/sqrt is taken in double on the float32 statistic: one rounding.
#include "kernels/norm.h"

#include <cmath>

#include "core/parallel.h"
#include "core/reduce.h"

namespace fastattn {
namespace FASTATTN_ISA_NAMESPACE {
namespace {

// y = (x - shift) * scale [* w] [+ b] over one row.
void normalize_row(const float* x, float* y, int64_t n, float shift, float scale, const float* w,
                   const float* b) {
  constexpr int W = Vec::size;
  const Vec vs = Vec::broadcast(shift), vk = Vec::broadcast(scale);
  for (int64_t i = 0; i < n; i += W) {
    const int cnt = n - i < W ? static_cast<int>(n - i) : W;
    Vec v = (load_n(x + i, cnt) - vs) * vk;
    if (w) v = v * load_n(w + i, cnt);
    if (b) v = v + load_n(b + i, cnt);
    store_n(y + i, v, cnt);
  }
}

int64_t row_grain(int64_t n) { return n >= 16384 ? 1 : 16384 / (n > 0 ? n : 1); }

void layer_norm_rows(const float* x, int64_t ldx, float* y, int64_t ldy, int64_t rows, int64_t n,
                     const float* w, const float* b, float eps) {
  if (n == 0) return;
  parallel_for(rows, row_grain(n), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const float* xr = x + r * ldx;
      const float mean =
          blocked_sum(n, [&](int64_t i, int cnt) { return load_n(xr + i, cnt); }) / n;
      const Vec vm = Vec::broadcast(mean);
      // masked lanes load `mean`, so they contribute (mean - mean)^2 = 0
      const float var = blocked_sum(n, [&](int64_t i, int cnt) {
                          const Vec d = load_n(xr + i, cnt, mean) - vm;
                          return d * d;
                        }) / n;
      const float rstd = static_cast<float>(1.0 / std::sqrt(static_cast<double>(var) + eps));
      normalize_row(xr, y + r * ldy, n, mean, rstd, w, b);
    }
  });
}

void rms_norm_rows(const float* x, int64_t ldx, float* y, int64_t ldy, int64_t rows, int64_t n,
                   const float* w, float eps) {
  if (n == 0) return;
  parallel_for(rows, row_grain(n), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const float* xr = x + r * ldx;
      const float ms = blocked_sum(n, [&](int64_t i, int cnt) {
                         const Vec v = load_n(xr + i, cnt);
                         return v * v;
                       }) / n;
      const float rstd = static_cast<float>(1.0 / std::sqrt(static_cast<double>(ms) + eps));
      normalize_row(xr, y + r * ldy, n, 0.0f, rstd, w, nullptr);
    }
  });
}

}  // namespace

void register_kernels(NormKernels& t, Tag) {
  t.layer_norm = layer_norm_rows;
  t.rms_norm = rms_norm_rows;
}

}  // namespace FASTATTN_ISA_NAMESPACE
}  // namespace fastattn

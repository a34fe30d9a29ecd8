// softmax / log_softmax: three passes over each row (max; exp and sum; scale), each row on one
// thread. A 4096-float row (16 KiB) stays in L1 between passes, so the row is read from memory
// once and written once: the kernel runs at memory bandwidth for large inputs.
// Accuracy: exp's ~2 ulp, the sum's ~20 eps (core/reduce.h), one rounding of x - m
// (|x - m| * 2^-24 absolute) and the final scale: within 1e-6 relative of float64 for logits
// spread over less than ~8 (tests/test_softmax.py).
#include "kernels/softmax.h"

#include <cmath>
#include <limits>

#include "core/parallel.h"
#include "core/reduce.h"

namespace fastattn {
namespace FASTATTN_ISA_NAMESPACE {
namespace {

void softmax_row(const float* x, float* y, int64_t n, bool log) {
  constexpr int W = Vec::size;
  const float ninf = -std::numeric_limits<float>::infinity();
  const float m = row_max(x, n);
  if (m == ninf) {  // every entry -inf (no key allowed): zeros, not NaN
    const Vec fill = Vec::broadcast(log ? ninf : 0.0f);
    int64_t i = 0;
    for (; i + W <= n; i += W) fill.store(y + i);
    if (i < n) fill.store_partial(y + i, static_cast<int>(n - i));
    return;
  }
  const Vec vm = Vec::broadcast(m);
  if (!log) {
    // y = exp(x - m), summed as it is written; masked lanes load -inf so they add exp(-inf) = 0.
    const float sum = blocked_sum(n, [&](int64_t i, int cnt) {
      const Vec e = exp(load_n(x + i, cnt, ninf) - vm);
      store_n(y + i, e, cnt);
      return e;
    });
    const Vec inv = Vec::broadcast(1.0f / sum);
    int64_t i = 0;
    for (; i + W <= n; i += W) (Vec::load(y + i) * inv).store(y + i);
    if (i < n) (Vec::load_partial(y + i, static_cast<int>(n - i)) * inv)
                   .store_partial(y + i, static_cast<int>(n - i));
  } else {
    const float sum = blocked_sum(n, [&](int64_t i, int cnt) {
      return exp(load_n(x + i, cnt, ninf) - vm);
    });
    const Vec lse = Vec::broadcast(static_cast<float>(std::log(static_cast<double>(sum))));
    int64_t i = 0;
    for (; i + W <= n; i += W) ((Vec::load(x + i) - vm) - lse).store(y + i);
    if (i < n) {
      const int cnt = static_cast<int>(n - i);
      ((Vec::load_partial(x + i, cnt) - vm) - lse).store_partial(y + i, cnt);
    }
  }
}

void softmax_rows(const float* x, int64_t ldx, float* y, int64_t ldy, int64_t rows, int64_t n,
                  bool log) {
  const int64_t grain = n >= 16384 ? 1 : 16384 / (n > 0 ? n : 1);  // >= ~64 KiB per thread
  parallel_for(rows, grain, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) softmax_row(x + r * ldx, y + r * ldy, n, log);
  });
}

}  // namespace

void register_kernels(SoftmaxKernels& t, Tag) { t.softmax = softmax_rows; }

}  // namespace FASTATTN_ISA_NAMESPACE
}  // namespace fastattn

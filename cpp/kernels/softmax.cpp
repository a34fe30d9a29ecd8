// softmax / log_softmax: three passes over each row (max; exp and sum; scale), each row on one
// thread. A 4096-float row (16 KiB) stays in L1 between passes, so the row is read from memory
// once and written once: the kernel runs at memory bandwidth for large inputs. For outputs
// larger than the cache (core/row_writer.h), exp(x - m) is staged in a per-thread scratch row
// that stays in L1, and the scaled result is written with streaming stores.
// Accuracy: exp's ~2 ulp, the sum's ~20 eps (core/reduce.h), one rounding of x - m
// (|x - m| * 2^-24 absolute) and the final scale: within 1e-6 relative of float64 for logits
// spread over less than ~8 (tests/test_softmax.py).
#include "kernels/softmax.h"

#include <cmath>
#include <limits>

#include "core/memory.h"
#include "core/parallel.h"
#include "core/reduce.h"
#include "core/row_writer.h"
#include "core/util.h"

namespace fastattn {
namespace FASTATTN_ISA_NAMESPACE {
namespace {

// Rows up to this length stage exp(x - m) in scratch when streaming (64 KiB: L1/L2 resident;
// the same 64 KiB as kGrainFloats only by coincidence, so a constant of its own).
constexpr int64_t kMaxStagedRow = 16384;

// scratch: null, or room for n floats to stage exp(x - m) (streaming writes). next: the next
// row (prefetched during the exp pass, which computes from L1), or null.
void softmax_row(const float* x, float* y, int64_t n, bool log, bool streaming, float* scratch,
                 const float* next) {
  constexpr int W = Vec::size;
  const float ninf = -std::numeric_limits<float>::infinity();
  const float m = row_max(x, n);
  if (m == ninf) {
    // Every entry -inf (no key allowed): zeros (log: -inf), not NaN. The max skips NaN (x86
    // max semantics), so a row of only NaN and -inf lands here too: it gives NaN, as any row
    // holding a NaN does. A rare path: the scalar scan costs nothing measurable.
    bool has_nan = false;
    for (int64_t i = 0; i < n && !has_nan; ++i) has_nan = std::isnan(x[i]);
    const Vec fill = Vec::broadcast(has_nan ? std::numeric_limits<float>::quiet_NaN()
                                            : (log ? ninf : 0.0f));
    write_row(y, n, streaming, [&](int64_t, int) { return fill; });
    return;
  }
  const Vec vm = Vec::broadcast(m);
  if (!log) {
    // e = exp(x - m), summed as it is written (to scratch, or to y itself); masked lanes load
    // -inf so they add exp(-inf) = 0. Then y = e * (1 / sum).
    float* e = scratch ? scratch : y;
    const float sum = blocked_sum(n, [&](int64_t i, int cnt) {
      prefetch_next_row(next, i);
      const Vec v = exp(load_n(x + i, cnt, ninf) - vm);
      store_n(e + i, v, cnt);
      return v;
    });
    const Vec inv = Vec::broadcast(1.0f / sum);
    write_row(y, n, streaming && scratch, [&](int64_t i, int cnt) { return load_n(e + i, cnt) * inv; });
  } else {
    const float sum = blocked_sum(n, [&](int64_t i, int cnt) {
      prefetch_next_row(next, i);
      return exp(load_n(x + i, cnt, ninf) - vm);
    });
    const Vec lse = Vec::broadcast(static_cast<float>(std::log(static_cast<double>(sum))));
    write_row(y, n, streaming, [&](int64_t i, int cnt) { return (load_n(x + i, cnt) - vm) - lse; });
  }
}

void softmax_rows(const float* x, int64_t ldx, float* y, int64_t ldy, int64_t rows, int64_t n,
                  bool log) {
  const int64_t grain = grain_items(n, kGrainFloats);
  const bool streaming = should_stream(rows * n);
  parallel_for(rows, grain, [&](int64_t r0, int64_t r1) {
    AlignedFloats scratch(streaming && !log && n <= kMaxStagedRow ? n : 0);
    for (int64_t r = r0; r < r1; ++r)
      softmax_row(x + r * ldx, y + r * ldy, n, log, streaming, scratch.data(),
                  r + 1 < r1 ? x + (r + 1) * ldx : nullptr);
    if (streaming) stream_fence();
  });
}

}  // namespace

void register_kernels(SoftmaxKernels& t, Tag) { t.softmax = softmax_rows; }

}  // namespace FASTATTN_ISA_NAMESPACE
}  // namespace fastattn

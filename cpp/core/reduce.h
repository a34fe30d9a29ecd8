// Accurate float32 sums along a row, shared by softmax and the norms.
//
// Plain left-to-right float32 summation of n terms has error ~ n * eps; for a 1M-element row
// that is ~6%. Here each SIMD lane accumulates at most kBlockVectors terms per block in four
// independent accumulators (error ~ 16 eps per block), and block sums are added to a per-lane
// Kahan-compensated total (error ~ 2 eps), so the total error is ~(16 + log2 W + 2) eps
// relative to sum |terms|, independent of n. The order is fixed by n alone (never by threads).
#pragma once

#include <cstdint>
#include <limits>

#include "core/vec_math.h"

namespace fastattn {
namespace FASTATTN_ISA_NAMESPACE {

// Sum over i in [0, n) of term(i, cnt), where term reads lanes [i, i + cnt) and returns a Vec
// whose lanes >= cnt are 0. term is called in increasing i, once per vector of the row, so it
// may also store (softmax writes exp(x - max) while summing it).
template <class Term>
float blocked_sum(int64_t n, const Term& term) {
  constexpr int W = Vec::size;
  constexpr int64_t kBlock = 64 * W;  // 16 terms per accumulator lane per block
  Vec total = Vec::zero(), comp = Vec::zero();
  for (int64_t i = 0; i < n;) {
    const int64_t end = n - i < kBlock ? n : i + kBlock;
    Vec a0 = Vec::zero(), a1 = Vec::zero(), a2 = Vec::zero(), a3 = Vec::zero();
    for (; i + 4 * W <= end; i += 4 * W) {
      a0 = a0 + term(i, W);
      a1 = a1 + term(i + W, W);
      a2 = a2 + term(i + 2 * W, W);
      a3 = a3 + term(i + 3 * W, W);
    }
    for (; i + W <= end; i += W) a0 = a0 + term(i, W);
    if (i < end) {
      a0 = a0 + term(i, static_cast<int>(end - i));
      i = end;
    }
    // Kahan step: total += block, carrying the rounding error in comp.
    const Vec y = ((a0 + a1) + (a2 + a3)) - comp;
    const Vec t = total + y;
    comp = (t - total) - y;
    total = t;
  }
  return hsum(total);
}

// max over x[0, n); -inf for n == 0.
inline float row_max(const float* x, int64_t n) {
  constexpr int W = Vec::size;
  const float ninf = -std::numeric_limits<float>::infinity();
  Vec m0 = Vec::broadcast(ninf), m1 = m0;
  int64_t i = 0;
  for (; i + 2 * W <= n; i += 2 * W) {
    m0 = max(m0, Vec::load(x + i));
    m1 = max(m1, Vec::load(x + i + W));
  }
  for (; i + W <= n; i += W) m0 = max(m0, Vec::load(x + i));
  if (i < n) m0 = max(m0, Vec::load_partial(x + i, static_cast<int>(n - i), ninf));
  return hmax(max(m0, m1));
}

}  // namespace FASTATTN_ISA_NAMESPACE
}  // namespace fastattn

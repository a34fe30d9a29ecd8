// The causal / sliding-window rule, stated once for every attention kernel (the tiled flash
// kernel, the split-KV decode kernel, and through it the KV cache).
//
// Queries and keys carry absolute positions: key j (0 <= j < number of keys) and a query at
// position p. Key j is visible from the query at p iff
//     j <= p                     (causal)
//     j >  p - W                 (window W: the W most recent keys, p itself included)
//     j <  p + W                 (window W without causal: |p - j| < W on both sides)
// so the visible keys form one interval [lo, hi). For attention(q, k, v) the query i sits at
// p = i + Lk - Lq (bottom-right alignment); in the KV cache the T new tokens sit at
// p = length - T + t and the rule is always causal.
//
// Overflow: p - W + 1 and p + W overflow int64 for W near 2^63 (a "no window" sentinel some
// callers pass). Every |p - j| here is below `extent` (the caller's bound on positions and
// keys, e.g. Lq + Lk), so a window W >= extent excludes nothing and is dropped on
// construction; after that every sum below stays within +-2 extent.
#pragma once

#ifndef FASTATTN_ISA_NAMESPACE
#error "kernels/attention/key_rule.h is for kernel translation units (compiled per ISA)"
#endif

#include <cstdint>

namespace fastattn {
namespace FASTATTN_ISA_NAMESPACE {

struct KeyRule {
  bool causal = false;
  int64_t window = 0;  // W >= 1, or 0 for none

  KeyRule() = default;
  // extent: an upper bound on |p - j| + 1 over every query and key of the problem.
  KeyRule(bool causal_, int64_t window_, int64_t extent)
      : causal(causal_), window(window_ > 0 && window_ < extent ? window_ : 0) {}

  // Visible keys [lo, hi) of the query at position p, clipped to [0, len_k); lo >= hi: none.
  // lo and hi are non-decreasing in p, so the union over a run of queries is bounded by its
  // first and last query.
  void range(int64_t p, int64_t len_k, int64_t& lo, int64_t& hi) const {
    lo = 0;
    hi = len_k;
    if (causal && p + 1 < hi) hi = p + 1;
    if (window > 0) {
      if (p - window + 1 > lo) lo = p - window + 1;
      if (!causal && p + window < hi) hi = p + window;
    }
  }
};

}  // namespace FASTATTN_ISA_NAMESPACE
}  // namespace fastattn

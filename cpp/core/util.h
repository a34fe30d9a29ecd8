// Small helpers every kernel uses: integer blocking arithmetic, the loop over a row in
// vectors with a masked tail, one prefetch, and the named work grains of the threading rule.
//
// Kernel translation units only (compiled once per ISA): like every kernel header, its code
// lives in the ISA's namespace, so an inline function instantiated with AVX-512 flags can
// never be merged by the linker into the baseline path. No intrinsics here (core/vec.h holds
// them all) and no SIMD values at namespace scope.
#pragma once

#ifndef FASTATTN_ISA_NAMESPACE
#error "core/util.h is for kernel translation units (compiled per ISA)"
#endif

#include <cstdint>

#include "core/vec.h"

namespace fastattn {
namespace FASTATTN_ISA_NAMESPACE {

// ------------------------------------------------------------------ integer arithmetic
// ceil(a / b) for a >= 0, b > 0.
constexpr int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
// The smallest multiple of b that is >= a (a >= 0, b > 0).
constexpr int64_t round_up(int64_t a, int64_t b) { return ceil_div(a, b) * b; }

// ------------------------------------------------------------------ work grains
// A parallel_for chunk must amortise waking a thread (~5-10 us with OpenMP's team on the
// 2-core hosts we measure on): about 64 KiB of float32 input per thread is ~2-4 us of
// streaming at one core's bandwidth, the smallest chunk where a second thread still pays.
constexpr int64_t kGrainFloats = int64_t{1} << 14;  // 16384 floats = 64 KiB
// Elementwise maps (activations) do less work per byte than a row kernel's several passes,
// so they need twice the data per thread before a second thread pays off.
constexpr int64_t kGrainElementwise = int64_t{1} << 15;
// Multiply-adds per thread for dot-product loops (attention's weights rows: Lk (D + 1) each):
// 2^16 FMAs is ~5 us on one core, the same fork/join break-even as kGrainFloats.
constexpr int64_t kGrainMultiplyAdds = int64_t{1} << 16;

// Items per thread such that each thread gets at least `grain` units of work when one item
// is `per_item` units (>= 1 item).
constexpr int64_t grain_items(int64_t per_item, int64_t grain) {
  return per_item >= grain ? 1 : grain / (per_item > 0 ? per_item : 1);
}

// ------------------------------------------------------------------ loads, stores, loops
// Loads cnt lanes (cnt == Vec::size is the full, unmasked load); lanes >= cnt get `fill`.
inline Vec load_n(const float* p, int cnt, float fill = 0.0f) {
  return cnt == Vec::size ? Vec::load(p) : Vec::load_partial(p, cnt, fill);
}
// Stores lanes [0, cnt) of v; memory past p + cnt is never touched.
inline void store_n(float* p, Vec v, int cnt) {
  if (cnt == Vec::size) v.store(p); else v.store_partial(p, cnt);
}

// f(i, cnt) over [0, n) in vectors: cnt == Vec::size for the body, then one call with the
// remaining 1..W-1 lanes. The body's cnt is a compile-time constant once f is inlined, so
// load_n / store_n inside f become plain loads and stores there (no branch per vector).
template <class F>
inline void for_each_vec(int64_t n, const F& f) {
  constexpr int W = Vec::size;
  int64_t i = 0;
  for (; i + W <= n; i += W) f(i, W);
  if (i < n) f(i, static_cast<int>(n - i));
}

// ------------------------------------------------------------------ prefetch
// Hints the 64-byte line holding p into the cache: Locality 3 = all levels (data used next),
// 2 = L2 and out (data used after the current working set), Write = 1 for a line about to be
// written. A hint never faults, so p may point past an array's end. Compilers without
// __builtin_prefetch get no hint (the result is the same, only the latency differs).
template <int Locality = 3, int Write = 0>
inline void prefetch(const void* p) {
#if defined(__GNUC__) || defined(__clang__)
  __builtin_prefetch(p, Write, Locality);
#else
  (void)p;
#endif
}

// Hints `len` elements of T (float, 16-bit storage, ...) from p, one hint per 64-byte line.
template <int Locality = 3, class T>
inline void prefetch_elems(const T* p, int64_t len) {
  const char* c = reinterpret_cast<const char*>(p);
  for (int64_t x = 0; x < len * static_cast<int64_t>(sizeof(T)); x += 64) prefetch<Locality>(c + x);
}

}  // namespace FASTATTN_ISA_NAMESPACE
}  // namespace fastattn

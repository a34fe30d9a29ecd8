// parallel_for for kernel translation units.
//
// Work [0, n) is cut into contiguous chunks, one per thread, by a fixed rule; kernels make each
// item's result independent of which thread computes it (no cross-item reduction), so results
// are bit-identical for any thread count. Lives in the per-ISA namespace like all kernel code.
#pragma once

#ifndef FASTATTN_ISA_NAMESPACE
#error "core/parallel.h is for kernel translation units (compiled per ISA)"
#endif

#include <cstdint>

#include "core/threading.h"

#if defined(_OPENMP)
#include <omp.h>
#endif

namespace fastattn {
namespace FASTATTN_ISA_NAMESPACE {

// Threads worth using for n items when each thread should get at least `grain` of them.
inline int threads_for(int64_t n, int64_t grain) {
  int nt = num_threads();
  const int64_t chunks = grain > 0 ? (n + grain - 1) / grain : n;
  if (chunks < nt) nt = static_cast<int>(chunks < 1 ? 1 : chunks);
  return nt;
}

// f(begin, end) on contiguous static chunks of [0, n). f must not throw.
template <class F>
void parallel_for(int64_t n, int64_t grain, const F& f) {
  if (n <= 0) return;
  const int nt = threads_for(n, grain);
  if (nt <= 1) {
    f(int64_t{0}, n);
    return;
  }
#if defined(_OPENMP)
#pragma omp parallel num_threads(nt)
  {
    const int64_t t = omp_get_thread_num(), T = omp_get_num_threads();
    const int64_t b = n * t / T, e = n * (t + 1) / T;
    if (b < e) f(b, e);
  }
#else
  f(int64_t{0}, n);
#endif
}

// f(i) for each item, handed out dynamically: for work items of unequal cost (causal
// attention rows). Each item must be computed independently of the others.
template <class F>
void parallel_for_each_dynamic(int64_t n, const F& f) {
  if (n <= 0) return;
  const int nt = threads_for(n, 1);
  if (nt <= 1) {
    for (int64_t i = 0; i < n; ++i) f(i);
    return;
  }
#if defined(_OPENMP)
#pragma omp parallel for num_threads(nt) schedule(dynamic, 1)
  for (int64_t i = 0; i < n; ++i) f(i);
#else
  for (int64_t i = 0; i < n; ++i) f(i);
#endif
}

// Like parallel_for_each_dynamic, with per-thread state: each thread makes `local =
// make_local()` once (scratch buffers) and calls f(i, local) for the items it takes.
template <class MakeLocal, class F>
void parallel_for_each_dynamic_local(int64_t n, const MakeLocal& make_local, const F& f) {
  if (n <= 0) return;
  const int nt = threads_for(n, 1);
  if (nt <= 1) {
    auto local = make_local();
    for (int64_t i = 0; i < n; ++i) f(i, local);
    return;
  }
#if defined(_OPENMP)
#pragma omp parallel num_threads(nt)
  {
    auto local = make_local();
#pragma omp for schedule(dynamic, 1)
    for (int64_t i = 0; i < n; ++i) f(i, local);
  }
#else
  auto local = make_local();
  for (int64_t i = 0; i < n; ++i) f(i, local);
#endif
}

}  // namespace FASTATTN_ISA_NAMESPACE
}  // namespace fastattn

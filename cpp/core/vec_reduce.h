// sum_lanes: Vec::size horizontal sums at once, the companion of core/vec.h's hsum for kernels
// that reduce many dot products (decode attention's scores: one per query row and key).
//
//   Vec sum_lanes(const Vec* v)   // v[0..Vec::size): lane i of the result = hsum(v[i])
//
// A transposing add tree: at each level pairs of vectors swap halves (256-bit, 128-bit, then
// 64- and 32-bit pieces) and add, so W sums cost ~3 (W - 1) shuffles and adds instead of W
// separate hsums (~9 dependent operations each on AVX-512). The summation order of each lane is
// a fixed tree (the same for every call), so results are reproducible; it differs from hsum's
// order in the last bits.
#pragma once

#ifndef FASTATTN_ISA_NAMESPACE
#error "core/vec_reduce.h is for kernel translation units (compiled per ISA)"
#endif

#include "core/vec.h"

namespace fastattn {
namespace FASTATTN_ISA_NAMESPACE {

#if defined(__AVX512F__) && defined(__AVX512DQ__)
inline Vec sum_lanes(const Vec* v) {
  // Level 1: vectors 2k, 2k+1 -> p[k], whose 128-bit quarters hold (v[2k] quarters 0+2,
  // 1+3, v[2k+1] quarters 0+2, 1+3).
  __m512 p[8];
  for (int k = 0; k < 8; ++k) {
    const __m512 a = v[2 * k].v, b = v[2 * k + 1].v;
    p[k] = _mm512_add_ps(_mm512_shuffle_f32x4(a, b, 0x44), _mm512_shuffle_f32x4(a, b, 0xEE));
  }
  // Level 2: quarter j of q[k] holds 4 partial sums of v[4k + j].
  __m512 q[4];
  for (int k = 0; k < 4; ++k) {
    const __m512 a = p[2 * k], b = p[2 * k + 1];
    q[k] = _mm512_add_ps(_mm512_shuffle_f32x4(a, b, 0x88), _mm512_shuffle_f32x4(a, b, 0xDD));
  }
  // Level 3: in quarter j, r[0] holds 2 partials of v[j] then 2 of v[4 + j]; r[1] of v[8 + j],
  // v[12 + j].
  __m512 r[2];
  for (int k = 0; k < 2; ++k) {
    const __m512 a = q[2 * k], b = q[2 * k + 1];
    r[k] = _mm512_add_ps(_mm512_shuffle_ps(a, b, 0x44), _mm512_shuffle_ps(a, b, 0xEE));
  }
  // Level 4: lane 4j + m = sum of v[j + 4m]; the permute puts sum i in lane i.
  const __m512 s = _mm512_add_ps(_mm512_shuffle_ps(r[0], r[1], 0x88),
                                 _mm512_shuffle_ps(r[0], r[1], 0xDD));
  const __m512i order = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
  return Vec(_mm512_permutexvar_ps(order, s));
}
#elif defined(__AVX2__)
inline Vec sum_lanes(const Vec* v) {
  // Level 1: vectors 2k, 2k+1 -> p[k] = (v[2k] halves added | v[2k+1] halves added).
  __m256 p[4];
  for (int k = 0; k < 4; ++k) {
    const __m256 a = v[2 * k].v, b = v[2 * k + 1].v;
    p[k] = _mm256_add_ps(_mm256_permute2f128_ps(a, b, 0x20), _mm256_permute2f128_ps(a, b, 0x31));
  }
  // Level 2: in half h, q[k] holds 2 partials of v[2k + h'] ... (pairs of p).
  __m256 q[2];
  for (int k = 0; k < 2; ++k) {
    const __m256 a = p[2 * k], b = p[2 * k + 1];
    q[k] = _mm256_add_ps(_mm256_shuffle_ps(a, b, 0x44), _mm256_shuffle_ps(a, b, 0xEE));
  }
  // Level 3: lane 4h + m = sum of v[h + 2m]; the permute puts sum i in lane i.
  const __m256 s = _mm256_add_ps(_mm256_shuffle_ps(q[0], q[1], 0x88),
                                 _mm256_shuffle_ps(q[0], q[1], 0xDD));
  const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
  return Vec(_mm256_permutevar8x32_ps(s, order));
}
#else
inline Vec sum_lanes(const Vec* v) {
  Vec r;
  for (int i = 0; i < Vec::size; ++i) r.v[i] = hsum(v[i]);
  return r;
}
#endif

}  // namespace FASTATTN_ISA_NAMESPACE
}  // namespace fastattn

// Vec: a float32 SIMD register, one definition per ISA path, so kernels read like math.
//
// Included only by kernel translation units, which are compiled once per ISA with the macro
// FASTATTN_ISA_NAMESPACE naming the namespace (isa_baseline / isa_avx2 / isa_avx512). The
// implementation is chosen by the compiler flags of that unit:
//   AVX-512 (F+DQ): 16 lanes, __m512, masked loads/stores for tails
//   AVX2+FMA:        8 lanes, __m256, maskload/maskstore for tails
//   baseline:        4 lanes of plain C++ the compiler auto-vectorises (SSE2 on x86-64)
// Every lane count is even, so swap_pairs (RoPE's interleaved pairs) never splits a pair.
// No constants at namespace scope: every SIMD value is made inside a function, after dispatch.
#pragma once

#ifndef FASTATTN_ISA_NAMESPACE
#error "core/vec.h is for kernel translation units (compiled per ISA)"
#endif

#include <cmath>
#include <cstdint>
#include <cstring>

#if defined(__AVX2__) || defined(__AVX512F__)
#include <immintrin.h>
#endif

namespace fastattn {
namespace FASTATTN_ISA_NAMESPACE {

#if defined(__AVX512F__) && defined(__AVX512DQ__)
// ----------------------------------------------------------------------------- AVX-512
struct Vec {
  static constexpr int size = 16;
  __m512 v;
  Vec() = default;
  explicit Vec(__m512 x) : v(x) {}
  static __mmask16 mask(int n) { return static_cast<__mmask16>((1u << n) - 1u); }
  static Vec zero() { return Vec(_mm512_setzero_ps()); }
  static Vec broadcast(float a) { return Vec(_mm512_set1_ps(a)); }
  static Vec load(const float* p) { return Vec(_mm512_loadu_ps(p)); }
  // Lanes [0, n) from p, the rest `fill`; lanes >= n are never read (no fault past the end).
  static Vec load_partial(const float* p, int n, float fill = 0.0f) {
    return Vec(_mm512_mask_loadu_ps(_mm512_set1_ps(fill), mask(n), p));
  }
  void store(float* p) const { _mm512_storeu_ps(p, v); }
  void store_partial(float* p, int n) const { _mm512_mask_storeu_ps(p, mask(n), v); }
  // Non-temporal store (bypasses the cache, no read-for-ownership); p aligned to 64 bytes.
  void stream(float* p) const { _mm512_stream_ps(p, v); }
};
// Orders earlier non-temporal stores before later stores (call after a streamed region).
inline void stream_fence() { _mm_sfence(); }
inline Vec operator+(Vec a, Vec b) { return Vec(_mm512_add_ps(a.v, b.v)); }
inline Vec operator-(Vec a, Vec b) { return Vec(_mm512_sub_ps(a.v, b.v)); }
inline Vec operator*(Vec a, Vec b) { return Vec(_mm512_mul_ps(a.v, b.v)); }
inline Vec operator/(Vec a, Vec b) { return Vec(_mm512_div_ps(a.v, b.v)); }
inline Vec fmadd(Vec a, Vec b, Vec c) { return Vec(_mm512_fmadd_ps(a.v, b.v, c.v)); }   // a*b+c
inline Vec fnmadd(Vec a, Vec b, Vec c) { return Vec(_mm512_fnmadd_ps(a.v, b.v, c.v)); } // c-a*b
// max/min return the SECOND operand when either is NaN (x86 semantics); callers rely on it.
inline Vec max(Vec a, Vec b) { return Vec(_mm512_max_ps(a.v, b.v)); }
inline Vec min(Vec a, Vec b) { return Vec(_mm512_min_ps(a.v, b.v)); }
inline Vec abs(Vec a) { return Vec(_mm512_abs_ps(a.v)); }
inline Vec sqrt(Vec a) { return Vec(_mm512_sqrt_ps(a.v)); }
inline Vec round_nearest(Vec a) {
  return Vec(_mm512_roundscale_ps(a.v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
}
// cond's sign bit set (negative, -0.0, negative NaN) ? a : b
inline Vec if_negative(Vec cond, Vec a, Vec b) {
  return Vec(_mm512_mask_blend_ps(_mm512_movepi32_mask(_mm512_castps_si512(cond.v)), b.v, a.v));
}
// x > y ? a : b  (false for NaN)
inline Vec if_greater(Vec x, Vec y, Vec a, Vec b) {
  return Vec(_mm512_mask_blend_ps(_mm512_cmp_ps_mask(x.v, y.v, _CMP_GT_OQ), b.v, a.v));
}
// 2^n for float-valued integers n in [-126, 127], by writing n + 127 into the exponent bits.
inline Vec pow2_int(Vec n) {
  const __m512i e = _mm512_add_epi32(_mm512_cvtps_epi32(n.v), _mm512_set1_epi32(127));
  return Vec(_mm512_castsi512_ps(_mm512_slli_epi32(e, 23)));
}
// Swaps the two lanes of each pair: (a0, a1, a2, a3, ...) -> (a1, a0, a3, a2, ...).
inline Vec swap_pairs(Vec a) { return Vec(_mm512_permute_ps(a.v, 0xB1)); }
// lanes [0, n) of a, the rest 0
inline Vec keep_first(Vec a, int n) { return Vec(_mm512_maskz_mov_ps(Vec::mask(n), a.v)); }
inline float hsum(Vec a) { return _mm512_reduce_add_ps(a.v); }
inline float hmax(Vec a) { return _mm512_reduce_max_ps(a.v); }

#elif defined(__AVX2__) && defined(__FMA__)
// ----------------------------------------------------------------------------- AVX2 + FMA
struct Vec {
  static constexpr int size = 8;
  __m256 v;
  Vec() = default;
  explicit Vec(__m256 x) : v(x) {}
  static __m256i mask(int n) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  }
  static Vec zero() { return Vec(_mm256_setzero_ps()); }
  static Vec broadcast(float a) { return Vec(_mm256_set1_ps(a)); }
  static Vec load(const float* p) { return Vec(_mm256_loadu_ps(p)); }
  static Vec load_partial(const float* p, int n, float fill = 0.0f) {
    const __m256i m = mask(n);
    const __m256 x = _mm256_maskload_ps(p, m);  // masked lanes read as 0, never fault
    return Vec(_mm256_blendv_ps(_mm256_set1_ps(fill), x, _mm256_castsi256_ps(m)));
  }
  void store(float* p) const { _mm256_storeu_ps(p, v); }
  void store_partial(float* p, int n) const { _mm256_maskstore_ps(p, mask(n), v); }
  // Non-temporal store (bypasses the cache, no read-for-ownership); p aligned to 32 bytes.
  void stream(float* p) const { _mm256_stream_ps(p, v); }
};
inline void stream_fence() { _mm_sfence(); }
inline Vec operator+(Vec a, Vec b) { return Vec(_mm256_add_ps(a.v, b.v)); }
inline Vec operator-(Vec a, Vec b) { return Vec(_mm256_sub_ps(a.v, b.v)); }
inline Vec operator*(Vec a, Vec b) { return Vec(_mm256_mul_ps(a.v, b.v)); }
inline Vec operator/(Vec a, Vec b) { return Vec(_mm256_div_ps(a.v, b.v)); }
inline Vec fmadd(Vec a, Vec b, Vec c) { return Vec(_mm256_fmadd_ps(a.v, b.v, c.v)); }
inline Vec fnmadd(Vec a, Vec b, Vec c) { return Vec(_mm256_fnmadd_ps(a.v, b.v, c.v)); }
inline Vec max(Vec a, Vec b) { return Vec(_mm256_max_ps(a.v, b.v)); }
inline Vec min(Vec a, Vec b) { return Vec(_mm256_min_ps(a.v, b.v)); }
inline Vec abs(Vec a) {
  return Vec(_mm256_andnot_ps(_mm256_set1_ps(-0.0f), a.v));
}
inline Vec sqrt(Vec a) { return Vec(_mm256_sqrt_ps(a.v)); }
inline Vec round_nearest(Vec a) {
  return Vec(_mm256_round_ps(a.v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
}
inline Vec if_negative(Vec cond, Vec a, Vec b) { return Vec(_mm256_blendv_ps(b.v, a.v, cond.v)); }
inline Vec if_greater(Vec x, Vec y, Vec a, Vec b) {
  return Vec(_mm256_blendv_ps(b.v, a.v, _mm256_cmp_ps(x.v, y.v, _CMP_GT_OQ)));
}
inline Vec pow2_int(Vec n) {
  const __m256i e = _mm256_add_epi32(_mm256_cvtps_epi32(n.v), _mm256_set1_epi32(127));
  return Vec(_mm256_castsi256_ps(_mm256_slli_epi32(e, 23)));
}
inline Vec swap_pairs(Vec a) { return Vec(_mm256_permute_ps(a.v, 0xB1)); }
inline Vec keep_first(Vec a, int n) {
  return Vec(_mm256_and_ps(a.v, _mm256_castsi256_ps(Vec::mask(n))));
}
// Fixed pairwise order: (lo128 + hi128), then within 128 bits.
inline float hsum(Vec a) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(a.v), _mm256_extractf128_ps(a.v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}
inline float hmax(Vec a) {
  __m128 s = _mm_max_ps(_mm256_castps256_ps128(a.v), _mm256_extractf128_ps(a.v, 1));
  s = _mm_max_ps(s, _mm_movehl_ps(s, s));
  s = _mm_max_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

#else
// ----------------------------------------------------------------------------- baseline
// Plain C++ over 4 lanes; GCC/Clang turn these loops into SSE2 on x86-64 and NEON on Arm.
struct Vec {
  static constexpr int size = 4;
  float v[4];
  static Vec zero() { return broadcast(0.0f); }
  static Vec broadcast(float a) { Vec r; for (int i = 0; i < size; ++i) r.v[i] = a; return r; }
  static Vec load(const float* p) { Vec r; std::memcpy(r.v, p, sizeof r.v); return r; }
  static Vec load_partial(const float* p, int n, float fill = 0.0f) {
    Vec r = broadcast(fill);
    for (int i = 0; i < n; ++i) r.v[i] = p[i];
    return r;
  }
  void store(float* p) const { std::memcpy(p, v, sizeof v); }
  void store_partial(float* p, int n) const { for (int i = 0; i < n; ++i) p[i] = v[i]; }
  // Portable code has no non-temporal store: a plain store.
  void stream(float* p) const { store(p); }
};
inline void stream_fence() {}
#define FASTATTN_VEC_MAP2(name, expr)                                           \
  inline Vec name(Vec a, Vec b) { Vec r; for (int i = 0; i < Vec::size; ++i) { \
    const float x = a.v[i], y = b.v[i]; r.v[i] = (expr); } return r; }
FASTATTN_VEC_MAP2(operator+, x + y)
FASTATTN_VEC_MAP2(operator-, x - y)
FASTATTN_VEC_MAP2(operator*, x * y)
FASTATTN_VEC_MAP2(operator/, x / y)
// Same NaN rule as x86 max/min: the second operand wins when either is NaN.
FASTATTN_VEC_MAP2(max, x > y ? x : y)
FASTATTN_VEC_MAP2(min, x < y ? x : y)
#undef FASTATTN_VEC_MAP2
inline Vec fmadd(Vec a, Vec b, Vec c) { return a * b + c; }
inline Vec fnmadd(Vec a, Vec b, Vec c) { return c - a * b; }
inline Vec abs(Vec a) { Vec r; for (int i = 0; i < Vec::size; ++i) r.v[i] = std::fabs(a.v[i]); return r; }
inline Vec sqrt(Vec a) { Vec r; for (int i = 0; i < Vec::size; ++i) r.v[i] = std::sqrt(a.v[i]); return r; }
inline Vec round_nearest(Vec a) {
  // Adding and subtracting 1.5 * 2^23 rounds to nearest-even for |a| < 2^22 (our range).
  Vec r;
  for (int i = 0; i < Vec::size; ++i) {
    const float t = a.v[i] + 12582912.0f;  // no -ffast-math: the compiler keeps both steps
    r.v[i] = t - 12582912.0f;
  }
  return r;
}
inline Vec if_negative(Vec cond, Vec a, Vec b) {
  Vec r; for (int i = 0; i < Vec::size; ++i) r.v[i] = std::signbit(cond.v[i]) ? a.v[i] : b.v[i]; return r;
}
inline Vec if_greater(Vec x, Vec y, Vec a, Vec b) {
  Vec r; for (int i = 0; i < Vec::size; ++i) r.v[i] = x.v[i] > y.v[i] ? a.v[i] : b.v[i]; return r;
}
inline Vec pow2_int(Vec n) {
  Vec r;
  for (int i = 0; i < Vec::size; ++i) {
    // n is a float-valued integer (or NaN, for which any finite bit pattern will do: the
    // polynomial factor already carries the NaN).
    const float ni = n.v[i];
    const int32_t e = (ni == ni) ? static_cast<int32_t>(ni) + 127 : 0;
    const uint32_t bits = static_cast<uint32_t>(e) << 23;
    std::memcpy(&r.v[i], &bits, 4);
  }
  return r;
}
inline Vec swap_pairs(Vec a) {
  Vec r;
  for (int i = 0; i < Vec::size; i += 2) { r.v[i] = a.v[i + 1]; r.v[i + 1] = a.v[i]; }
  return r;
}
inline Vec keep_first(Vec a, int n) {
  Vec r; for (int i = 0; i < Vec::size; ++i) r.v[i] = i < n ? a.v[i] : 0.0f; return r;
}
inline float hsum(Vec a) { return (a.v[0] + a.v[2]) + (a.v[1] + a.v[3]); }
inline float hmax(Vec a) {
  const float m01 = a.v[0] > a.v[1] ? a.v[0] : a.v[1], m23 = a.v[2] > a.v[3] ? a.v[2] : a.v[3];
  return m01 > m23 ? m01 : m23;
}
#endif

}  // namespace FASTATTN_ISA_NAMESPACE
}  // namespace fastattn

// 16-bit floats (IEEE binary16 "float16", and bfloat16) to and from Vec: the companion of
// core/vec.h for kernels that store data in 16 bits and compute in float32 (the KV cache and
// decode attention over it; the bfloat16 / float16 / q8 / q4 weight formats, kernels/matmul/
// lowp.cpp). The one definition of these conversions in the C++.
// Like vec.h this is a per-ISA header with intrinsics; the storage is uint16_t bit patterns.
//
// Conversions, every path giving the same bits:
//   float16 -> float32   exact (every binary16 value, subnormals included, is a float32).
//                        AVX2 / AVX-512: F16C `vcvtph2ps`; baseline: the bit formula below.
//   float32 -> float16   round to nearest, ties to even (IEEE default). |x| >= 65520 (the
//                        midpoint between 65504, the largest float16, and 2^16) -> +-inf;
//                        |x| < 2^-25 -> +-0; in between, subnormal results 2^-24 apart.
//                        NaN -> quiet NaN (sign and the top 9 payload bits kept).
//                        AVX2 / AVX-512: `vcvtps2ph` with _MM_FROUND_TO_NEAREST_INT (MXCSR is
//                        untouched: the project never builds with fast-math, so no DAZ).
//   bfloat16 -> float32  exact: the 16 bits are the top half of the float32.
//   float32 -> bfloat16  round to nearest, ties to even, by integer arithmetic on the bits:
//                        (x + 0x7FFF + ((x >> 16) & 1)) >> 16; a finite x past the largest
//                        bfloat16 rounds to inf the same way; NaN -> (x >> 16) | 0x0040 (quiet,
//                        never rounded into inf).
#pragma once

#ifndef FASTATTN_ISA_NAMESPACE
#error "core/vec16.h is for kernel translation units (compiled per ISA)"
#endif

#include <cstdint>
#include <cstring>
#include <type_traits>

#include "core/util.h"
#include "core/vec.h"

namespace fastattn {
namespace FASTATTN_ISA_NAMESPACE {

// ---- scalar conversions (the baseline path, tails, and the reference for the others)
inline uint32_t f32_bits(float x) { uint32_t u; std::memcpy(&u, &x, 4); return u; }
inline float bits_f32(uint32_t u) { float x; std::memcpy(&x, &u, 4); return x; }

inline float f16_to_f32(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1Fu, man = h & 0x3FFu;
  if (exp == 0x1F) return bits_f32(sign | 0x7F800000u | (man << 13));  // inf, NaN (payload kept)
  if (exp != 0) return bits_f32(sign | ((exp + 112) << 23) | (man << 13));  // 112 = 127 - 15
  // zero or subnormal: man x 2^-24, exact in float32 (a product by a power of two); the sign
  // ORed into its bits (branch-free, unlike a conditional negation)
  const float mag = static_cast<float>(man) * 5.9604644775390625e-8f;  // 2^-24
  return bits_f32(sign | f32_bits(mag));
}

inline uint16_t f32_to_f16(float x) {
  const uint32_t u = f32_bits(x);
  const uint16_t sign = static_cast<uint16_t>((u >> 16) & 0x8000u);
  const uint32_t a = u & 0x7FFFFFFFu;
  if (a > 0x7F800000u) return sign | 0x7E00u | static_cast<uint16_t>((a >> 13) & 0x3FFu);  // NaN
  if (a >= 0x477FF000u) return sign | 0x7C00u;  // >= 65520 (and inf): rounds to inf
  if (a >= 0x38800000u) {                        // >= 2^-14: normal float16
    // rebias the exponent (127 -> 15) and round the 13 dropped bits to nearest even; a carry
    // out of the mantissa correctly bumps the exponent
    const uint32_t r = a - 0x38000000u;  // (127 - 15) << 23
    return sign | static_cast<uint16_t>((r + 0x0FFFu + ((r >> 13) & 1u)) >> 13);
  }
  if (a < 0x33000000u) return sign;  // < 2^-25: rounds to zero (2^-25 itself is a tie -> 0)
  // subnormal float16: value / 2^-24 rounded to nearest even, from the 24-bit significand
  const uint32_t e = a >> 23;                      // 102..112
  const uint32_t m = (a & 0x7FFFFFu) | 0x800000u;  // significand with the implicit bit
  const uint32_t shift = 126 - e;                  // 14..24: m x 2^(e - 150) / 2^-24
  const uint32_t half = 1u << (shift - 1), rest = m & ((1u << shift) - 1u);
  uint32_t q = m >> shift;
  if (rest > half || (rest == half && (q & 1u))) ++q;  // may round up to 2^-14: still right
  return sign | static_cast<uint16_t>(q);
}

// One float16 at the path's speed, for a value read once among many (the q8 / q4 weights' scale
// per 32-element block, kernels/matmul/lowp.cpp): F16C's scalar vcvtph2ps where the path has
// it (AVX2 / AVX-512: -mf16c), whose cost is one instruction, where f16_to_f32's branches cost
// about as much as converting the block's 32 quants; the bit formula on baseline. The same
// float for every non-NaN h; a signalling NaN comes back quiet from vcvtph2ps, as it does from
// Float16::load on those paths.
inline float f16_to_f32_fast(uint16_t h) {
#if defined(__F16C__)
  return _cvtsh_ss(h);
#else
  return f16_to_f32(h);
#endif
}

inline float bf16_to_f32(uint16_t h) { return bits_f32(static_cast<uint32_t>(h) << 16); }

inline uint16_t f32_to_bf16(float x) {
  const uint32_t u = f32_bits(x);
  if ((u & 0x7FFFFFFFu) > 0x7F800000u) return static_cast<uint16_t>((u >> 16) | 0x0040u);
  return static_cast<uint16_t>((u + 0x7FFFu + ((u >> 16) & 1u)) >> 16);
}

// ---- the two formats as element types: load / store Vec::size values, or cnt < size of them
// (tails go through a zero-padded buffer: lanes >= cnt read as 0 and are never written).
struct Float16 {
  static float to_float(uint16_t h) { return f16_to_f32(h); }
  static uint16_t from_float(float x) { return f32_to_f16(x); }
  static Vec load(const uint16_t* p);
  static void store(uint16_t* p, Vec v);
};
struct BFloat16 {
  static float to_float(uint16_t h) { return bf16_to_f32(h); }
  static uint16_t from_float(float x) { return f32_to_bf16(x); }
  static Vec load(const uint16_t* p);
  static void store(uint16_t* p, Vec v);
};

#if defined(__AVX512F__) && defined(__AVX512DQ__)
inline Vec Float16::load(const uint16_t* p) {
  return Vec(_mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p))));
}
inline void Float16::store(uint16_t* p, Vec v) {
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(p),
                      _mm512_cvtps_ph(v.v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
}
inline Vec BFloat16::load(const uint16_t* p) {
  const __m512i w = _mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
  return Vec(_mm512_castsi512_ps(_mm512_slli_epi32(w, 16)));
}
inline void BFloat16::store(uint16_t* p, Vec v) {
  const __m512i u = _mm512_castps_si512(v.v);
  const __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1));
  const __m512i rounded = _mm512_srli_epi32(
      _mm512_add_epi32(_mm512_add_epi32(u, _mm512_set1_epi32(0x7FFF)), lsb), 16);
  const __m512i quiet = _mm512_or_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(0x40));
  const __mmask16 nan = _mm512_cmp_ps_mask(v.v, v.v, _CMP_UNORD_Q);
  const __m512i r = _mm512_mask_blend_epi32(nan, rounded, quiet);
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), _mm512_cvtepi32_epi16(r));
}
#elif defined(__AVX2__)
inline Vec Float16::load(const uint16_t* p) {
  return Vec(_mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))));
}
inline void Float16::store(uint16_t* p, Vec v) {
  _mm_storeu_si128(reinterpret_cast<__m128i*>(p),
                   _mm256_cvtps_ph(v.v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
}
inline Vec BFloat16::load(const uint16_t* p) {
  const __m256i w = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  return Vec(_mm256_castsi256_ps(_mm256_slli_epi32(w, 16)));
}
inline void BFloat16::store(uint16_t* p, Vec v) {
  const __m256i u = _mm256_castps_si256(v.v);
  const __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(1));
  const __m256i rounded = _mm256_srli_epi32(
      _mm256_add_epi32(_mm256_add_epi32(u, _mm256_set1_epi32(0x7FFF)), lsb), 16);
  const __m256i quiet = _mm256_or_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(0x40));
  const __m256i nan = _mm256_castps_si256(_mm256_cmp_ps(v.v, v.v, _CMP_UNORD_Q));
  const __m256i r = _mm256_blendv_epi8(rounded, quiet, nan);
  // 8 x 32-bit lanes (each < 2^16) -> 8 x 16 bits: packus works per 128-bit half, so the
  // permute brings the two halves' results together in the low 128 bits.
  const __m256i packed = _mm256_permute4x64_epi64(_mm256_packus_epi32(r, r), 0xD8);
  _mm_storeu_si128(reinterpret_cast<__m128i*>(p), _mm256_castsi256_si128(packed));
}
#else
inline Vec Float16::load(const uint16_t* p) {
  Vec r;
  for (int i = 0; i < Vec::size; ++i) r.v[i] = f16_to_f32(p[i]);
  return r;
}
inline void Float16::store(uint16_t* p, Vec v) {
  for (int i = 0; i < Vec::size; ++i) p[i] = f32_to_f16(v.v[i]);
}
inline Vec BFloat16::load(const uint16_t* p) {
  Vec r;
  for (int i = 0; i < Vec::size; ++i) r.v[i] = bf16_to_f32(p[i]);
  return r;
}
inline void BFloat16::store(uint16_t* p, Vec v) {
  for (int i = 0; i < Vec::size; ++i) p[i] = f32_to_bf16(v.v[i]);
}
#endif

// Float32 as the third element type, so kernels templated over the storage read alike.
struct Float32 {
  static Vec load(const float* p) { return Vec::load(p); }
  static void store(float* p, Vec v) { v.store(p); }
};

// load_n / store_n for the 16-bit types (util.h's for float): full vector when cnt == size.
template <class H>
inline Vec load_n16(const uint16_t* p, int cnt) {
  if (cnt == Vec::size) return H::load(p);
  uint16_t buf[Vec::size] = {};
  std::memcpy(buf, p, sizeof(uint16_t) * static_cast<size_t>(cnt));
  return H::load(buf);
}
template <class H>
inline void store_n16(uint16_t* p, Vec v, int cnt) {
  if (cnt == Vec::size) return H::store(p, v);
  uint16_t buf[Vec::size];
  H::store(buf, v);
  std::memcpy(p, buf, sizeof(uint16_t) * static_cast<size_t>(cnt));
}

// Element-generic load_n: float storage or a 16-bit one.
template <class E, class T>
inline Vec load_elems(const T* p, int cnt) {
  if constexpr (std::is_same<T, float>::value) return load_n(p, cnt);
  else return load_n16<E>(p, cnt);
}

}  // namespace FASTATTN_ISA_NAMESPACE
}  // namespace fastattn

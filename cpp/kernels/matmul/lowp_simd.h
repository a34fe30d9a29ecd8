// The weight formats' 8-bit integer elements to float32 Vecs (lowp.h), the int8 x int8 block
// dots and the panels' 8 x 8 register transpose, one definition per ISA path like core/vec.h.
// The 16-bit floats (bfloat16, float16, the q8 / q4 scales) convert through core/vec16.h
// (BFloat16::load, Float16::load, f16_to_f32_fast), shared with the KV cache. What stays here
// are intrinsics on 8-bit integer lanes, which Vec (a float register) has no type for, and the
// transpose; each conversion is exact (int8 and 4-bit values are float32 numbers).
//   AVX-512 (F):  vpmovsxbd / vpmovzxbd, 16 lanes
//   AVX2:         the same at 8 lanes; vpmaddubsw / vpmaddwd for the block dots
//   baseline:     plain C++ per lane
#pragma once

#ifndef FASTATTN_ISA_NAMESPACE
#error "lowp_simd.h is for kernel translation units (compiled per ISA)"
#endif

#include <cstdint>
#include <cstring>

#include "core/vec.h"
#include "core/vec16.h"

namespace fastattn {
namespace FASTATTN_ISA_NAMESPACE {

// Elements of a 32-block per Vec, and which 16-byte half of a q4 block a Vec's group reads.
constexpr int kLowpGroups = 32 / Vec::size;

#if defined(__AVX2__)
// r[j] = 8 floats of row j (8 k's) -> dst[k * ds + j]: an 8 x 8 transpose in registers.
inline void transpose8x8_store(const __m256 (&r)[8], float* dst, int64_t ds) {
  __m256 t[8], u[8];
  for (int i = 0; i < 8; i += 2) {
    t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);      // a0 b0 a1 b1 | a4 b4 a5 b5
    t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);  // a2 b2 a3 b3 | a6 b6 a7 b7
  }
  for (int i = 0; i < 8; i += 4) {
    u[i] = _mm256_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(1, 0, 1, 0));          // k 0 | 4
    u[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(3, 2, 3, 2));      // 1 | 5
    u[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(1, 0, 1, 0));  // 2 | 6
    u[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(3, 2, 3, 2));  // 3 | 7
  }
  for (int i = 0; i < 4; ++i) {
    _mm256_storeu_ps(dst + i * ds, _mm256_permute2f128_ps(u[i], u[i + 4], 0x20));
    _mm256_storeu_ps(dst + (i + 4) * ds, _mm256_permute2f128_ps(u[i], u[i + 4], 0x31));
  }
}
#endif

// One 32-element step of 8 rows of W^T, converted (v[j][g]: row j's elements g W .. g W + W),
// written as 8 columns of a panel: dst[k * ds + j] for k < 32, j < 8 (the panel path's
// conversion: W's rows become the panel's columns), transposed in registers.
inline void store_step_transposed(const Vec (&v)[8][kLowpGroups], float* dst, int64_t ds) {
#if defined(__AVX512F__) && defined(__AVX512DQ__)
  for (int g = 0; g < kLowpGroups; ++g)
    for (int h = 0; h < 2; ++h) {
      __m256 r[8];
      for (int j = 0; j < 8; ++j)
        r[j] = h ? _mm512_extractf32x8_ps(v[j][g].v, 1) : _mm512_castps512_ps256(v[j][g].v);
      transpose8x8_store(r, dst + (g * 16 + h * 8) * ds, ds);
    }
#elif defined(__AVX2__)
  for (int g = 0; g < kLowpGroups; ++g) {
    __m256 r[8];
    for (int j = 0; j < 8; ++j) r[j] = v[j][g].v;
    transpose8x8_store(r, dst + g * 8 * ds, ds);
  }
#else
  for (int g = 0; g < kLowpGroups; ++g)
    for (int i = 0; i < Vec::size; ++i)
      for (int j = 0; j < 8; ++j) dst[(g * Vec::size + i) * ds + j] = v[j][g].v[i];
#endif
}

#if defined(__AVX512F__) && defined(__AVX512DQ__)
// Vec::size elements from p.
inline Vec from_i8(const int8_t* p) {
  return Vec(_mm512_cvtepi32_ps(
      _mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)))));
}
// Group g (elements [g * 16, g * 16 + 16)) of the q4 block at p: the low nibbles of its 16
// bytes, then the high ones; q = nibble - 8.
inline Vec from_q4(const uint8_t* p, int g) {
  __m512i x = _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  x = g == 0 ? _mm512_and_si512(x, _mm512_set1_epi32(0xF)) : _mm512_srli_epi32(x, 4);
  return Vec(_mm512_cvtepi32_ps(_mm512_sub_epi32(x, _mm512_set1_epi32(8))));
}

#elif defined(__AVX2__) && defined(__FMA__)
inline Vec from_i8(const int8_t* p) {
  return Vec(_mm256_cvtepi32_ps(
      _mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p)))));
}
// Group g in [0, 4): bytes (g % 2) * 8 .. + 8, low nibbles for g < 2, high ones after.
inline Vec from_q4(const uint8_t* p, int g) {
  __m256i x = _mm256_cvtepu8_epi32(
      _mm_loadl_epi64(reinterpret_cast<const __m128i*>(p + (g & 1) * 8)));
  x = g < 2 ? _mm256_and_si256(x, _mm256_set1_epi32(0xF)) : _mm256_srli_epi32(x, 4);
  return Vec(_mm256_cvtepi32_ps(_mm256_sub_epi32(x, _mm256_set1_epi32(8))));
}

#else
inline Vec from_i8(const int8_t* p) {
  Vec r;
  for (int i = 0; i < Vec::size; ++i) r.v[i] = static_cast<float>(p[i]);
  return r;
}
// Group g in [0, 8): bytes (g % 4) * 4 .. + 4, low nibbles for g < 4, high ones after.
inline Vec from_q4(const uint8_t* p, int g) {
  Vec r;
  const uint8_t* b = p + (g % 4) * 4;
  for (int i = 0; i < Vec::size; ++i)
    r.v[i] = static_cast<float>((g < 4 ? b[i] & 0xF : b[i] >> 4) - 8);
  return r;
}
#endif

// ---------------------------------------------------------------- int8 x int8 block dots
// The streaming path for q8 / q4 (lowp.cpp) multiplies the weight's quants by the activation's,
// quantised per block of 32 to int8 (llama.cpp's way): per block the 32 products are summed
// exactly in integers, then scaled by d_w d_a into a float32 accumulator.
//   WBlock: one block of 32 quants (q8: signed; q4: its nibbles 0..15), loaded once
//   BlockAcc: float32 partial sums; block_acc_add(acc, w, a, s): acc += s * sum_i w_i a_i
//   (block_acc_add_q4 for q4's nibbles u: (u - 8) . a)
// AVX2: vpmaddubsw multiplies unsigned by
// signed bytes, so |w| times a with w's sign moved onto a (vpsignb); pairs of products fit
// int16 (|w| <= 128, |a| <= 127: 2 * 128 * 127 = 32512 < 32767, never saturating), then
// vpmaddwd by ones sums pairs into 8 int32 lanes (exact), converted and FMA'd with s. (VNNI's
// vpdpbusd would fuse the two, but -mavx512vnni is not among the AVX-512 path's flags.)
// (A 512-bit form, two blocks per zmm with a masked sign flip since vpsignb has no 512-bit
// form, measured slower here than this 256-bit code on the AVX-512 path: q8 / q4 at 1024 x
// 1024 in cache 62 / 102 us against 45 / 57 us a call, so the AVX-512 path runs this one.)
#if defined(__AVX2__)
struct WBlock {
  __m256i q;
};
using BlockAcc = __m256;
inline BlockAcc block_acc_zero() { return _mm256_setzero_ps(); }
inline WBlock load_q8_block(const int8_t* p) {
  return {_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p))};
}
// q4's nibbles as they are, 0..15 (unsigned: vpmaddubsw's first operand takes them directly;
// the caller subtracts 8 sum(q_a) per block)
inline WBlock load_q4u_block(const uint8_t* p) {
  const __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
  const __m128i m = _mm_set1_epi8(0x0F);
  return {_mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(b, 4), m), _mm_and_si128(b, m))};
}
// q4's block dot (u - 8) . a, exact in int32 per lane: vpmaddubsw takes the unsigned nibbles
// as they are (pairs: 2 * 15 * 127, far from int16's limit), and each lane's 8 * (sum of its 4
// a's) - Q4Offset, made once per block of A and used for every row of W - is subtracted.
using Q4Offset = __m256i;
inline Q4Offset q4_offset(const int8_t* a) {
  const __m256i av = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a));
  return _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_set1_epi8(8), av),
                           _mm256_set1_epi16(1));
}
inline void block_acc_add_q4(BlockAcc& acc, const WBlock& u, const int8_t* a, float s,
                             const Q4Offset& off) {
  const __m256i av = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a));
  const __m256i p32 = _mm256_madd_epi16(_mm256_maddubs_epi16(u.q, av), _mm256_set1_epi16(1));
  acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_sub_epi32(p32, off)), _mm256_set1_ps(s), acc);
}
inline void block_acc_add(BlockAcc& acc, const WBlock& w, const int8_t* a, float s) {
  const __m256i av = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a));
  const __m256i p16 = _mm256_maddubs_epi16(_mm256_abs_epi8(w.q), _mm256_sign_epi8(av, w.q));
  const __m256i p32 = _mm256_madd_epi16(p16, _mm256_set1_epi16(1));
  acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p32), _mm256_set1_ps(s), acc);
}
inline float block_acc_sum(BlockAcc a) {
  __m128 x = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
  x = _mm_add_ps(x, _mm_movehl_ps(x, x));
  x = _mm_add_ss(x, _mm_movehdup_ps(x));
  return _mm_cvtss_f32(x);
}
#else
struct WBlock {
  int8_t q[32];
};
using BlockAcc = float;
inline BlockAcc block_acc_zero() { return 0.0f; }
inline WBlock load_q8_block(const int8_t* p) {
  WBlock w;
  std::memcpy(w.q, p, 32);
  return w;
}
inline WBlock load_q4u_block(const uint8_t* p) {
  WBlock w;
  for (int i = 0; i < 16; ++i) {
    w.q[i] = static_cast<int8_t>(p[i] & 0x0F);
    w.q[i + 16] = static_cast<int8_t>(p[i] >> 4);
  }
  return w;
}
inline void block_acc_add(BlockAcc& acc, const WBlock& w, const int8_t* a, float s) {
  int32_t dot = 0;
  for (int i = 0; i < 32; ++i) dot += static_cast<int32_t>(w.q[i]) * a[i];
  acc += static_cast<float>(dot) * s;
}
struct Q4Offset {};
inline Q4Offset q4_offset(const int8_t*) { return {}; }
inline void block_acc_add_q4(BlockAcc& acc, const WBlock& u, const int8_t* a, float s,
                             const Q4Offset&) {
  int32_t dot = 0;
  for (int i = 0; i < 32; ++i) dot += (static_cast<int32_t>(u.q[i]) - 8) * a[i];
  acc += static_cast<float>(dot) * s;
}
inline float block_acc_sum(BlockAcc a) { return a; }
#endif

}  // namespace FASTATTN_ISA_NAMESPACE
}  // namespace fastattn

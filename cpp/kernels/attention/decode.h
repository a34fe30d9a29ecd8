// Split-KV decode attention (flash-decoding): few query rows against many keys, the keys cut
// into chunks computed in parallel and merged by log-sum-exp. One kernel for both callers:
//   * attention(q, k, v) with few query rows per key/value head (kernels/attention/attention.cpp
//     chooses this path: decode and short chunks over long keys), K/V dense or strided, with the
//     user's mask;
//   * the KV cache (kernels/kv_cache.cpp): keys read in place from the ring buffer, where they
//     lie in up to two contiguous runs of slots (before and after the wrap point).
//
// Problem: queries t = 0..T-1 at positions p_t = length - T + t; keys at positions
// [first_key, length), key j stored in slot j mod slots. Visible keys of a query: `rule`
// (kernels/attention/key_rule.h) and, for attention, the user's mask and relative-position bias:
//   out[b, h, t] = sum_j softmax_j(scale q[b, h, t] . k[b, h / G, j] + bias[j]) v[b, h / G, j]
// A row with no visible key gives zeros. Algorithm, split policy, numerics: decode.cpp.
// K and V may be stored in 16 bits (the KV cache's float16 / bfloat16 dtypes, `kv_dtype`):
// each row is converted to float32 in registers as it is streamed (exact), so the result is
// float32 attention over the dequantized keys and values, at half the bytes read.
#pragma once

#ifndef FASTATTN_ISA_NAMESPACE
#error "kernels/attention/decode.h is for kernel translation units (compiled per ISA)"
#endif

#include <cstdint>
#include <limits>

#include "kernels/attention/attention.h"
#include "kernels/attention/key_rule.h"
#include "kernels/kv_cache.h"

namespace fastattn {
namespace FASTATTN_ISA_NAMESPACE {

// Scores s = scale (q . k) are saturated to +-kMaxScore (FLT_MAX) by every attention kernel: a
// score beyond float32 (scale = 1e38, q . k = 10) becomes the largest float rather than +-inf,
// so the running maximum stays finite and exp(s - m) never meets inf - inf (NaN); keys whose
// scores saturate tie. A float mask's bias is added after, saturated above only (a -inf bias
// still masks). NaN stays NaN (comparisons with NaN are false).
constexpr float kMaxScore = std::numeric_limits<float>::max();
inline float saturate_score(float s) {
  return s > kMaxScore ? kMaxScore : (s < -kMaxScore ? -kMaxScore : s);
}
inline float add_bias(float s, float bias) {
  const float t = s + bias;
  return t > kMaxScore ? kMaxScore : t;
}

// The relative-position bias of one query row (attention.h, AttentionRelPos) for keys
// [j0, j0 + n): s[c] = add_bias(s[c], rh[(j0 + c) / kw] + rw[(j0 + c) % kw]), with rh / rw the
// row's tables (element strides sh / sw). A float32 sum then one add: the same bits as a float
// mask holding rh + rw.
inline void add_rel_pos_row(const AttentionRelPos& rel, const float* rh, const float* rw,
                            int64_t j0, int64_t n, float* s) {
  const int64_t sh = rel.h_stride[3], sw = rel.w_stride[3];
  int64_t kh = j0 / rel.kw, kw = j0 % rel.kw;
  for (int64_t c = 0; c < n; ++c) {
    s[c] = add_bias(s[c], rh[kh * sh] + rw[kw * sw]);
    if (++kw == rel.kw) {
      kw = 0;
      ++kh;
    }
  }
}

inline int64_t rel_offset(const int64_t (&stride)[4], int64_t b, int64_t h, int64_t i) {
  return b * stride[0] + h * stride[1] + i * stride[2];
}

struct DecodeArgs {
  int64_t batch, heads_q, heads_kv, len_q, dim, dim_v;  // B, Hq, Hkv, T, D, Dv
  AttentionTensor q, out;  // (B, Hq, T, D) and (B, Hq, T, Dv); out may alias q (read first)
  AttentionTensor k, v;    // slot s of (b, g): data + b stride_b + g stride_h + s stride_l
  KVDtype kv_dtype;        // K/V elements: float32 (the default, 0), or uint16_t bit patterns
                           // of float16 / bfloat16 whose pointer is stored in k.data / v.data
                           // (strides in elements); q, out and the mask are float32 always
  int64_t slots;           // S: key j lives in slot j mod S (attention: S = length, no wrap)
  int64_t length;          // keys [0, length) exist by position; queries are the last T
  int64_t first_key;       // the oldest stored key (ring: max(0, length - S)); every key a
                           // query may see must be >= first_key
  KeyRule rule;
  AttentionMask mask_kind;    // user mask (attention only): indexed (b, h, t, j)
  const void* mask;
  int64_t mask_stride[4];
  AttentionRelPos rel;        // attention only (h_table null: none), indexed (b, h, t, .)
  float scale;
};

// out = decode attention; O(chunks x rows x Dv) scratch for the partials.
void decode_attention(const DecodeArgs& a);

// ---- the split-KV pieces, shared with the tiled kernel when it splits long keys (attention.cpp)
// Split policy: chunks per work item for `items` independent items over `keys` keys; a
// function of the problem size only (decode.cpp gives the formula and its reasons).
int64_t split_chunks(int64_t items, int64_t keys);

// Keys [begin, end) of chunk c of `chunks` over [lo, hi): equal cuts, in order.
inline void chunk_bounds(int64_t lo, int64_t hi, int64_t c, int64_t chunks, int64_t& begin,
                         int64_t& end) {
  const int64_t n = hi > lo ? hi - lo : 0;
  begin = lo + n * c / chunks;
  end = lo + n * (c + 1) / chunks;
}

// One output row y (dv floats) from the partials of its chunks c = 0..chunks-1 (m at
// m[c ml_stride], l at l[c ml_stride], o at o + c o_stride), in chunk order:
//   M = max_c m_c,  y = sum_c e^(m_c - M) o_c / sum_c e^(m_c - M) l_c;  all m_c = -inf: zeros.
void merge_partials(int64_t chunks, const float* m, const float* l, int64_t ml_stride,
                    const float* o, int64_t o_stride, int64_t dv, float* y);

}  // namespace FASTATTN_ISA_NAMESPACE
}  // namespace fastattn

// Scaled dot-product attention, tiled flash-style (online softmax), forward only.
//
//   O[b, h, i, :] = sum_j P[b, h, i, j] V[b, h / G, j, :]
//   P[b, h, i, :] = softmax_j(S),  S[j] = scale * q[b, h, i, :] . k[b, h / G, j, :] + bias[j]
//
// with G = Hq / Hkv query heads per key/value head (MHA G = 1, GQA, MQA Hkv = 1). Key j is
// allowed for query i unless masked: a boolean mask entry false, causal (j > p), or the window
// (p - j >= W; without causal also j - p >= W), where p = i + (Lk - Lq) is the query's absolute
// position (bottom-right alignment). A float mask is added to S, after the decomposed
// relative-position bias if any (AttentionRelPos). A query row with no allowed key gives zeros.
// Details: kernels/attention/attention.cpp.
#pragma once

#include <cstdint>

#include "core/isa.h"

namespace fastattn {

enum class AttentionMask : int { none = 0, boolean = 1, additive = 2 };

// A 4-D float32 tensor (batch, head, position, feature) whose feature axis is contiguous;
// strides are in elements (any sign) for the first three axes.
struct AttentionTensor {
  float* data;
  int64_t stride_b, stride_h, stride_l;
};

// Decomposed relative-position bias (SAM / ViTDet): the keys lie row-major on a kh x kw grid
// (kh * kw = Lk), and score (i, j) of head h gets
//     bias[b, h, i, j] = h_table[b, h, i, j / kw] + w_table[b, h, i, j % kw]
// (the float32 sum of the two entries, added like a float mask entry), never materialised:
// each kernel adds the two small per-row tables to its score block. h_table null: none.
struct AttentionRelPos {
  const float* h_table;   // (B, Hq, Lq, kh)
  const float* w_table;   // (B, Hq, Lq, kw)
  int64_t kh, kw;
  int64_t h_stride[4];    // elements, any sign, 0 on broadcast axes
  int64_t w_stride[4];
};

struct AttentionArgs {
  int64_t batch, heads_q, heads_kv, len_q, len_k, dim, dim_v;
  AttentionTensor q, k, v, out;            // (B, Hq, Lq, D), (B, Hkv, Lk, D), (.., Dv), (B, Hq, Lq, Dv)
  AttentionMask mask_kind;
  const void* mask;                        // bool (1 byte, nonzero = may attend) or float32
  int64_t mask_stride[4];                  // elements, 0 on broadcast axes of (B, Hq, Lq, Lk)
  AttentionRelPos rel;                     // rel.h_table null: no relative-position bias
  bool causal;
  int64_t window;                          // <= 0: no window
  float scale;
};

struct AttentionKernels {
  // out = attention(q, k, v); O(tile) scratch per thread, never O(Lq * Lk).
  void (*forward)(const AttentionArgs& a) = nullptr;
  // weights (B, Hq, Lq, Lk), C-contiguous: the probabilities P, one row at a time.
  void (*weights)(const AttentionArgs& a, float* weights) = nullptr;
};
FASTATTN_DECLARE_KERNEL_TABLE(AttentionKernels)

}  // namespace fastattn

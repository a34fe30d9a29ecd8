// KV cache kernels: the ring-buffer append and decode / chunked-prefill attention over it.
//
// Storage per layer: K and V of shape (B, Hkv, S, D), S slots. The token at absolute position
// j lives in slot j mod S; after `length` tokens, positions [max(0, length - S), length) are
// stored. Without a sliding window S is the capacity and slots never wrap.
//
// attend: queries t = 0..T-1 are the last T tokens, position p_t = length - T + t. Query t sees
// the keys j with  j <= p_t  (causal by absolute position)  and, with a window W > 0,
// j > p_t - W  (the last W tokens, itself included; Mistral's sliding window); the rule is
// kernels/attention/key_rule.h's, a window W >= length is none:
//   out_t = sum_j softmax_j(scale q_t . k_j) v_j
// GQA: query head h reads kv head h / (Hq / Hkv) (transformers' repeat_kv order).
#pragma once

#include <cstdint>

#include "core/isa.h"

namespace fastattn {

struct KVCacheKernels {
  // Copies k, v (B, Hkv, T, D) into kstore, vstore (B, Hkv, S, D) at slots (start + t) mod S.
  // Requires 1 <= T <= S. O(B Hkv T D): at most two memcpy runs per (batch, head).
  void (*append)(float* kstore, float* vstore, const float* k, const float* v, int64_t B,
                 int64_t Hkv, int64_t S, int64_t D, int64_t T, int64_t start) = nullptr;
  // out, q: (B, Hq, T, D) C-contiguous. Requires 1 <= T <= length, Hq % Hkv == 0, and every
  // key some query sees still stored: 0 < window < length ? T + window - 1 <= S : length <= S.
  void (*attend)(const float* kstore, const float* vstore, const float* q, float* out,
                 int64_t B, int64_t Hq, int64_t Hkv, int64_t S, int64_t D, int64_t T,
                 int64_t length, int64_t window, float scale) = nullptr;
};
FASTATTN_DECLARE_KERNEL_TABLE(KVCacheKernels)

}  // namespace fastattn

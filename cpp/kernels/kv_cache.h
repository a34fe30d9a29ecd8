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
//
// Storage dtype (KVDtype): float32, or 16 bits per element (uint16_t bit patterns of float16
// or bfloat16, core/vec16.h). append rounds the float32 keys/values to the storage (nearest,
// ties to even); attend converts K/V rows back to float32 in registers as it streams them
// (exact), so it equals float32 attention over the dequantized keys and values.
#pragma once

#include <cstdint>

#include "core/isa.h"

namespace fastattn {

// Element type of the stores: float32 (4 bytes), or float16 / bfloat16 held as uint16_t.
enum class KVDtype : int { float32 = 0, float16 = 1, bfloat16 = 2 };

struct KVCacheKernels {
  // Writes k, v (B, Hkv, T, D) into kstore, vstore (B, Hkv, S, D) of `dtype` elements at slots
  // (start + t) mod S, rounded to the storage. Requires 1 <= T <= S. O(B Hkv T D): at most two
  // runs of rows per (batch, head) (a memcpy for float32).
  void (*append)(void* kstore, void* vstore, const float* k, const float* v, int64_t B,
                 int64_t Hkv, int64_t S, int64_t D, int64_t T, int64_t start,
                 KVDtype dtype) = nullptr;
  // out, q: (B, Hq, T, D) C-contiguous. Requires 1 <= T <= length, Hq % Hkv == 0, and every
  // key some query sees still stored: 0 < window < length ? T + window - 1 <= S : length <= S.
  void (*attend)(const void* kstore, const void* vstore, const float* q, float* out,
                 int64_t B, int64_t Hq, int64_t Hkv, int64_t S, int64_t D, int64_t T,
                 int64_t length, int64_t window, float scale, KVDtype dtype) = nullptr;
  // n elements: 16-bit `dtype` -> float32 (exact), and float32 -> 16-bit (nearest even).
  void (*to_float32)(const uint16_t* src, float* dst, int64_t n, KVDtype dtype) = nullptr;
  void (*from_float32)(const float* src, uint16_t* dst, int64_t n, KVDtype dtype) = nullptr;
};
FASTATTN_DECLARE_KERNEL_TABLE(KVCacheKernels)

}  // namespace fastattn

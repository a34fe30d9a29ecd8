// KV cache: ring-buffer append, and decode attention read in place from the ring.
//
// append: per (batch, kv head), the T new rows go to slots start mod S onward: one memcpy run,
// or two when the ring wraps. Cost O(T), independent of how many tokens came before.
//
// attend: the split-KV decode kernel shared with attention (kernels/attention/decode.cpp:
// split policy, log-sum-exp merge, numerics), over the ring: key j in slot j mod S, the
// visible keys in at most two contiguous runs of slots, each read in place (no reordering
// copy). The causal / sliding-window rule is kernels/attention/key_rule.h's, by absolute
// position; a window of `length` or more keys excludes nothing and is dropped there.
#include "kernels/kv_cache.h"

#include <cstring>

#include "core/parallel.h"
#include "core/util.h"
#include "kernels/attention/decode.h"

namespace fastattn {
namespace FASTATTN_ISA_NAMESPACE {
namespace {

void append(float* kstore, float* vstore, const float* k, const float* v, int64_t B,
            int64_t Hkv, int64_t S, int64_t D, int64_t T, int64_t start) {
  const int64_t slot = start % S;
  const int64_t first = T < S - slot ? T : S - slot;  // rows before the wrap point
  const size_t row_bytes = static_cast<size_t>(D) * sizeof(float);
  const int64_t grain = grain_items(T * D, kGrainFloats);
  parallel_for(B * Hkv, grain, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) {
      for (int which = 0; which < 2; ++which) {
        float* dst = (which ? vstore : kstore) + i * S * D;
        const float* src = (which ? v : k) + i * T * D;
        std::memcpy(dst + slot * D, src, first * row_bytes);
        if (first < T) std::memcpy(dst, src + first * D, (T - first) * row_bytes);
      }
    }
  });
}

void attend(const float* kstore, const float* vstore, const float* q, float* out, int64_t B,
            int64_t Hq, int64_t Hkv, int64_t S, int64_t D, int64_t T, int64_t length,
            int64_t window, float scale) {
  DecodeArgs a{};
  a.batch = B;
  a.heads_q = Hq;
  a.heads_kv = Hkv;
  a.len_q = T;
  a.dim = a.dim_v = D;
  // Dense layouts: q, out (B, Hq, T, D); the stores (B, Hkv, S, D).
  a.q = {const_cast<float*>(q), Hq * T * D, T * D, D};
  a.out = {out, Hq * T * D, T * D, D};
  a.k = {const_cast<float*>(kstore), Hkv * S * D, S * D, D};
  a.v = {const_cast<float*>(vstore), Hkv * S * D, S * D, D};
  a.slots = S;
  a.length = length;
  a.first_key = length > S ? length - S : 0;
  a.rule = KeyRule(true, window, length);  // every p - j < length
  a.mask_kind = AttentionMask::none;
  a.mask = nullptr;
  a.scale = scale;
  decode_attention(a);
}

}  // namespace

void register_kernels(KVCacheKernels& t, Tag) {
  t.append = append;
  t.attend = attend;
}

}  // namespace FASTATTN_ISA_NAMESPACE
}  // namespace fastattn

// KV cache: ring-buffer append, and decode attention read in place from the ring.
//
// append: per (batch, kv head), the T new rows go to slots start mod S onward: one memcpy run,
// or two when the ring wraps. Cost O(T), independent of how many tokens came before. A 16-bit
// store converts each row as it copies it (core/vec16.h: round to nearest even; float16
// overflows to inf past 65504, documented in docs/kv_cache.md).
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
#include "core/vec16.h"
#include "kernels/attention/decode.h"

namespace fastattn {
namespace FASTATTN_ISA_NAMESPACE {
namespace {

// n floats -> n elements of H (rounded to nearest even).
template <class H>
void convert_from_float32(const float* src, uint16_t* dst, int64_t n) {
  for_each_vec(n, [&](int64_t i, int cnt) { store_n16<H>(dst + i, load_n(src + i, cnt), cnt); });
}
template <class H>
void convert_to_float32(const uint16_t* src, float* dst, int64_t n) {
  for_each_vec(n, [&](int64_t i, int cnt) { store_n(dst + i, load_n16<H>(src + i, cnt), cnt); });
}

// Rows [0, T) of one (batch, head) of src -> slots (slot + t) mod S of dst (T <= S).
template <class Store>
void append_rows(Store* dst, const float* src, int64_t S, int64_t D, int64_t T, int64_t slot,
                 KVDtype dtype) {
  const int64_t first = T < S - slot ? T : S - slot;  // rows before the wrap point
  const int64_t runs[2][3] = {{slot, 0, first}, {0, first, T - first}};  // dst row, src row, n
  for (const auto& run : runs) {
    if (run[2] == 0) continue;
    Store* d = dst + run[0] * D;
    const float* s = src + run[1] * D;
    const int64_t n = run[2] * D;
    if constexpr (std::is_same<Store, float>::value) {
      std::memcpy(d, s, static_cast<size_t>(n) * sizeof(float));
    } else if (dtype == KVDtype::float16) {
      convert_from_float32<Float16>(s, d, n);
    } else {
      convert_from_float32<BFloat16>(s, d, n);
    }
  }
}

void append(void* kstore, void* vstore, const float* k, const float* v, int64_t B,
            int64_t Hkv, int64_t S, int64_t D, int64_t T, int64_t start, KVDtype dtype) {
  const int64_t slot = start % S;
  const int64_t grain = grain_items(T * D, kGrainFloats);
  parallel_for(B * Hkv, grain, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) {
      for (int which = 0; which < 2; ++which) {
        void* store = which ? vstore : kstore;
        const float* src = (which ? v : k) + i * T * D;
        if (dtype == KVDtype::float32)
          append_rows(static_cast<float*>(store) + i * S * D, src, S, D, T, slot, dtype);
        else
          append_rows(static_cast<uint16_t*>(store) + i * S * D, src, S, D, T, slot, dtype);
      }
    }
  });
}

void to_float32(const uint16_t* src, float* dst, int64_t n, KVDtype dtype) {
  parallel_for(n, kGrainElementwise, [&](int64_t i0, int64_t i1) {
    if (dtype == KVDtype::float16) convert_to_float32<Float16>(src + i0, dst + i0, i1 - i0);
    else convert_to_float32<BFloat16>(src + i0, dst + i0, i1 - i0);
  });
}

void from_float32(const float* src, uint16_t* dst, int64_t n, KVDtype dtype) {
  parallel_for(n, kGrainElementwise, [&](int64_t i0, int64_t i1) {
    if (dtype == KVDtype::float16) convert_from_float32<Float16>(src + i0, dst + i0, i1 - i0);
    else convert_from_float32<BFloat16>(src + i0, dst + i0, i1 - i0);
  });
}

void attend(const void* kstore, const void* vstore, const float* q, float* out, int64_t B,
            int64_t Hq, int64_t Hkv, int64_t S, int64_t D, int64_t T, int64_t length,
            int64_t window, float scale, KVDtype dtype) {
  DecodeArgs a{};
  a.batch = B;
  a.heads_q = Hq;
  a.heads_kv = Hkv;
  a.len_q = T;
  a.dim = a.dim_v = D;
  // Dense layouts: q, out (B, Hq, T, D); the stores (B, Hkv, S, D).
  a.q = {const_cast<float*>(q), Hq * T * D, T * D, D};
  a.out = {out, Hq * T * D, T * D, D};
  // A 16-bit store's pointer travels in the float* field, strides in elements (decode.h).
  a.k = {static_cast<float*>(const_cast<void*>(kstore)), Hkv * S * D, S * D, D};
  a.v = {static_cast<float*>(const_cast<void*>(vstore)), Hkv * S * D, S * D, D};
  a.kv_dtype = dtype;
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
  t.to_float32 = to_float32;
  t.from_float32 = from_float32;
}

}  // namespace FASTATTN_ISA_NAMESPACE
}  // namespace fastattn

// Split-KV decode attention (contract in decode.h), shared by attention and the KV cache.
//
// Split policy (flash-decoding): the keys any query of the problem sees, [lo, hi), are cut
// into C equal chunks. One work item = (batch, kv head, chunk). C is chosen from the problem
// size only, never the thread count, so the bits are the same for any number of threads:
//     C = min(ceil(kTargetItems / (B Hkv)), ceil((hi - lo) / kMinChunkKeys)),  C >= 1
// i.e. enough items to keep every core busy with dynamic scheduling (kTargetItems = 64 is
// 32 per core on the 2-core hosts we measure on, several per core on 8-16 cores), but never
// chunks so short that the per-chunk state (and the merge) costs more than the keys. The same
// policy cuts the tiled kernel's keys when it splits (attention.cpp), whose per-chunk cost is
// larger (packing a tile's Q, a 96-row partial): 256-key chunks ran 13% slower there than 512
// (Lq 64, one head, Lk 8192), while the decode and kv_cache bench shapes get 8 chunks with either.
//
// One item walks its chunk in blocks of <= kKeyBlock keys that never cross the ring's wrap
// point, so each block is one contiguous run of K and V rows read in place (dense or strided
// attention tensors have no wrap: slots = length). All G = Hq / Hkv query heads of the group
// and all T query rows are processed against a block while it sits in L1/L2: each K/V row is
// read from memory once per group. Rows go in register blocks of up to kRowBlock (8 on
// AVX-512, 4 otherwise): scores s = scale q.k for W / R keys at a time (one K load feeds R
// FMAs; the R x W/R dot products reduced together by sum_lanes, core/vec_reduce.h, ~3
// operations per score instead of a horizontal sum each; saturated, decode.h), then the
// online-softmax update per row (Milakov & Gimelshein 2018):
//     m' = max(m, max_j s_j),  p_j = exp(s_j - m'),  l = l e^(m - m') + sum_j p_j,
//     o  = o e^(m - m') + sum_j p_j v_j
// with the P.V product accumulated in registers over the block (2 vectors x R rows).
// Measured (2 threads, AVX-512, KV cache Lk 32768, Hq 32 / Hkv 4, D 64): 8-row blocks and
// sum_lanes took float32 from ~3.5 to ~2.5 ms and float16 from ~2.9 to ~2.1 ms (loaded host).
// The relative-position bias (attention only) is added to the scores first, per row and key.
// Masking (key_rule.h's causal / window interval, the user's mask) sets scores to -inf; a row
// with no visible key in a chunk leaves the partial (m = -inf, l = 0, o = 0).
//
// Merge: the partials (m_c, l_c, o_c) of a row are combined in chunk order by log-sum-exp:
//     M = max_c m_c,  out = sum_c e^(m_c - M) o_c / sum_c e^(m_c - M) l_c
// (chunks with m_c = -inf contribute nothing; all -inf: zeros). The merge runs after every item
// has finished, so q is fully read before out is written: out may alias q.
//
// 16-bit K/V (the KV cache's float16 / bfloat16): the same loops templated over the element
// type (core/vec16.h); each K row slice is converted once per register block of query rows
// (vcvtph2ps, or a zero-extend and shift for bfloat16) and each V slice once per block of rows,
// so the conversion costs one instruction per Vec::size elements against R FMAs.
//
// Numerics: float32 throughout; exp ~2 ulp (core/vec_math.h); o and l accumulate <= 64 terms
// per block plus one rescale per block, so the error grows with the number of blocks in a
// chunk, ~(64 + keys/64) eps relative to sum_j p_j |v_j| (tests/test_kv_cache.py).
#include "kernels/attention/decode.h"

#include <cmath>
#include <cstring>
#include <limits>

#include "core/memory.h"
#include "core/parallel.h"
#include "core/reduce.h"
#include "core/util.h"
#include "core/vec16.h"
#include "core/vec_reduce.h"

namespace fastattn {
namespace FASTATTN_ISA_NAMESPACE {
namespace {

constexpr int64_t kKeyBlock = 64;       // keys per online-softmax step; their scores stay in L1
// Query rows sharing one pass over a key block: the scores hold 2R accumulators and P.V 2R,
// plus the K / V vectors: 8 rows fit AVX-512's 32 registers (a GQA-8 group in one pass, each
// K/V element loaded and converted once), 4 rows AVX2's and baseline's 16. Rows never interact,
// so the blocking changes no result bit.
constexpr int kRowBlock = Vec::size >= 16 ? 8 : 4;
constexpr int64_t kMinChunkKeys = 512;  // keys per chunk, at least (see the split policy)
constexpr int64_t kTargetItems = 64;    // (batch, kv head, chunk) items wanted

inline float ninf() { return -std::numeric_limits<float>::infinity(); }

// Everything one call shares, derived from DecodeArgs.
struct Problem {
  const DecodeArgs* a;
  int64_t G, rows;      // query heads per kv head; rows per item = G * T
  int64_t lo, hi;       // keys any query sees
  int64_t chunks;
  float *part_o, *part_m, *part_l;  // per (item, row): o (Dv floats, stride ldo), m, l
  int64_t ldo;
};

inline const float* row_at(const AttentionTensor& t, int64_t b, int64_t h, int64_t i) {
  return t.data + b * t.stride_b + h * t.stride_h + i * t.stride_l;
}
// row_at for K/V held as T (float, or uint16_t: k.data then points to 16-bit storage).
template <class T>
inline const T* elems_at(const AttentionTensor& t, int64_t b, int64_t h, int64_t i) {
  return reinterpret_cast<const T*>(t.data) + b * t.stride_b + h * t.stride_h + i * t.stride_l;
}

// One query row of a register block: its query, visible keys [lo, hi), user-mask row, state.
struct Row {
  const float* q;
  int64_t lo, hi;
  int64_t mask_off;  // element offset of mask[b, h, t, 0]
  const float *rh, *rw;  // the row's relative-position tables (null: none)
  float* m;
  float* l;
  float* o;
};

// The next block's first rows to hint into L2 while this one is computed: the kernel streams
// K and V from memory, and the hardware prefetchers alone leave it latency bound (the P.V
// loop walks V by columns).
template <class T>
struct Ahead {
  const T *k, *v;
  int64_t n;  // rows to hint, 0 for none
};

// Adds the user's mask to scores s[0, n) of keys [j0, j0 + n): bool false -> -inf, float: + bias.
inline void apply_user_mask(const DecodeArgs& a, int64_t off, int64_t j0, int64_t n, float* s) {
  const int64_t sk = a.mask_stride[3];
  if (a.mask_kind == AttentionMask::boolean) {
    const unsigned char* mb = static_cast<const unsigned char*>(a.mask) + off + j0 * sk;
    for (int64_t i = 0; i < n; ++i)
      if (!mb[i * sk]) s[i] = ninf();
  } else {
    const float* mf = static_cast<const float*>(a.mask) + off + j0 * sk;
    for (int64_t i = 0; i < n; ++i) s[i] = add_bias(s[i], mf[i * sk]);
  }
}

// One register block of R query rows against the contiguous key run [j0, j0 + n): K row i of
// the run at kb + i * ldk, V row i at vb + i * ldv; elements of type T read as E (vec16.h).
template <int R, class E, class T>
void attend_block(const DecodeArgs& a, const Row* rows, const T* kb, int64_t ldk,
                  const T* vb, int64_t ldv, int64_t j0, int64_t n, const Ahead<T>& pf) {
  constexpr int W = Vec::size;
  const int64_t D = a.dim, Dv = a.dim_v;
  alignas(64) float s[R][kKeyBlock];

  // Scores, KS = W / R keys at a time (SIMD paths): R x KS = W accumulators, one per (row,
  // key), reduced together by sum_lanes (core/vec_reduce.h) instead of W separate hsums;
  // each K row is loaded (and converted) once for the R queries, and the W independent
  // accumulators hide the FMA latency. The keys left over go two at a time, then one.
  int64_t j = 0;
  constexpr int KS = W / R;
  if constexpr (W > 4 && KS > 2 && KS * R == W) {
    const Vec top = Vec::broadcast(kMaxScore), bottom = Vec::broadcast(-kMaxScore);
    for (; j + KS <= n; j += KS) {
      for (int64_t i = j; i < j + KS && i < pf.n; ++i) {
        prefetch_elems<2>(pf.k + i * ldk, D);
        prefetch_elems<2>(pf.v + i * ldv, Dv);
      }
      const T* k0 = kb + j * ldk;
      Vec acc[W];
      for (int i = 0; i < W; ++i) acc[i] = Vec::zero();
      for_each_vec(D, [&](int64_t d, int cnt) {
        Vec kv[KS];
        for (int c = 0; c < KS; ++c) kv[c] = load_elems<E>(k0 + c * ldk + d, cnt);
        for (int r = 0; r < R; ++r) {
          const Vec qv = load_n(rows[r].q + d, cnt);
          for (int c = 0; c < KS; ++c) acc[r * KS + c] = fmadd(qv, kv[c], acc[r * KS + c]);
        }
      });
      // scaled and saturated as one vector: saturate_score's rule, NaN kept (min / max
      // return their second operand when either is NaN)
      alignas(64) float sums[W];
      max(bottom, min(top, sum_lanes(acc) * Vec::broadcast(a.scale))).store(sums);
      for (int r = 0; r < R; ++r)
        for (int c = 0; c < KS; ++c) s[r][j + c] = sums[r * KS + c];
    }
  }
  for (; j + 2 <= n; j += 2) {
    for (int64_t i = j; i < j + 2 && i < pf.n; ++i) {
      prefetch_elems<2>(pf.k + i * ldk, D);
      prefetch_elems<2>(pf.v + i * ldv, Dv);
    }
    const T* k0 = kb + j * ldk;
    const T* k1 = k0 + ldk;
    Vec a0[R], a1[R];
    for (int r = 0; r < R; ++r) { a0[r] = Vec::zero(); a1[r] = Vec::zero(); }
    for_each_vec(D, [&](int64_t d, int cnt) {
      const Vec kv0 = load_elems<E>(k0 + d, cnt), kv1 = load_elems<E>(k1 + d, cnt);
      for (int r = 0; r < R; ++r) {
        const Vec qv = load_n(rows[r].q + d, cnt);
        a0[r] = fmadd(qv, kv0, a0[r]);
        a1[r] = fmadd(qv, kv1, a1[r]);
      }
    });
    if constexpr (2 * R == W) {
      // a full register block: the 2R dot products reduced together (core/vec_reduce.h),
      // scaled and saturated as one vector: saturate_score's rule, NaN kept (min / max
      // return their second operand when either is NaN)
      Vec acc[W];
      for (int r = 0; r < R; ++r) { acc[2 * r] = a0[r]; acc[2 * r + 1] = a1[r]; }
      const Vec top = Vec::broadcast(kMaxScore), bottom = Vec::broadcast(-kMaxScore);
      alignas(64) float sums[W];
      max(bottom, min(top, sum_lanes(acc) * Vec::broadcast(a.scale))).store(sums);
      for (int r = 0; r < R; ++r) {
        s[r][j] = sums[2 * r];
        s[r][j + 1] = sums[2 * r + 1];
      }
    } else {
      for (int r = 0; r < R; ++r) {
        s[r][j] = saturate_score(hsum(a0[r]) * a.scale);
        s[r][j + 1] = saturate_score(hsum(a1[r]) * a.scale);
      }
    }
  }
  for (; j < n; ++j) {
    const T* kj = kb + j * ldk;
    Vec acc[R];
    for (int r = 0; r < R; ++r) acc[r] = Vec::zero();
    for_each_vec(D, [&](int64_t d, int cnt) {
      const Vec kv = load_elems<E>(kj + d, cnt);
      for (int r = 0; r < R; ++r) acc[r] = fmadd(load_n(rows[r].q + d, cnt), kv, acc[r]);
    });
    for (int r = 0; r < R; ++r) s[r][j] = saturate_score(hsum(acc[r]) * a.scale);
  }

  // Mask, then the online-softmax update of m, l and the rescale of o.
  for (int r = 0; r < R; ++r) {
    const Row& row = rows[r];
    if (row.rh) add_rel_pos_row(a.rel, row.rh, row.rw, j0, n, s[r]);
    if (a.mask_kind != AttentionMask::none) apply_user_mask(a, row.mask_off, j0, n, s[r]);
    if (j0 < row.lo || j0 + n > row.hi) {  // block straddles an edge of the visible interval
      for (int64_t i = 0; i < n; ++i)
        if (j0 + i < row.lo || j0 + i >= row.hi) s[r][i] = ninf();
    }
    const float bm = row_max(s[r], n);
    const float mnew = bm > *row.m ? bm : *row.m;
    if (mnew == ninf()) {  // nothing visible yet: weights 0, state unchanged (no inf - inf)
      for (int64_t i = 0; i < n; ++i) s[r][i] = 0.0f;
      continue;
    }
    const Vec vm = Vec::broadcast(mnew);
    Vec sum = Vec::zero();
    for_each_vec(n, [&](int64_t i, int cnt) {
      const Vec e = exp(load_n(s[r] + i, cnt, ninf()) - vm);  // padding lanes: exp(-inf) = 0
      store_n(s[r] + i, e, cnt);
      sum = sum + e;
    });
    const float alpha = *row.m == ninf() ? 0.0f : std::exp(*row.m - mnew);
    *row.l = *row.l * alpha + hsum(sum);
    *row.m = mnew;
    if (alpha != 1.0f) {
      const Vec va = Vec::broadcast(alpha);
      for_each_vec(Dv, [&](int64_t d, int cnt) {
        store_n(row.o + d, load_n(row.o + d, cnt) * va, cnt);
      });
    }
  }

  // o_r += sum_j p_rj v_j, two vectors of Dv at a time held in registers across the block.
  int64_t d = 0;
  for (; d + 2 * W <= Dv; d += 2 * W) {
    Vec a0[R], a1[R];
    for (int r = 0; r < R; ++r) {
      a0[r] = Vec::load(rows[r].o + d);
      a1[r] = Vec::load(rows[r].o + d + W);
    }
    for (int64_t i = 0; i < n; ++i) {
      const T* vj = vb + i * ldv + d;
      const Vec v0 = E::load(vj), v1 = E::load(vj + W);
      for (int r = 0; r < R; ++r) {
        const Vec p = Vec::broadcast(s[r][i]);
        a0[r] = fmadd(p, v0, a0[r]);
        a1[r] = fmadd(p, v1, a1[r]);
      }
    }
    for (int r = 0; r < R; ++r) {
      a0[r].store(rows[r].o + d);
      a1[r].store(rows[r].o + d + W);
    }
  }
  for (; d < Dv; d += W) {
    const int cnt = Dv - d < W ? static_cast<int>(Dv - d) : W;
    Vec acc[R];
    for (int r = 0; r < R; ++r) acc[r] = load_n(rows[r].o + d, cnt);
    for (int64_t i = 0; i < n; ++i) {
      const Vec vv = load_elems<E>(vb + i * ldv + d, cnt);
      for (int r = 0; r < R; ++r) acc[r] = fmadd(Vec::broadcast(s[r][i]), vv, acc[r]);
    }
    for (int r = 0; r < R; ++r) store_n(rows[r].o + d, acc[r], cnt);
  }
}

// Work item (b, g, c): the group's G * T query rows over chunk c of the keys [lo, hi), K/V
// elements of type T read as E.
template <class E, class Store>
void attend_item(const Problem& P, int64_t item) {
  const DecodeArgs& a = *P.a;
  const int64_t c = item % P.chunks, bg = item / P.chunks;
  const int64_t b = bg / a.heads_kv, g = bg % a.heads_kv;
  const int64_t S = a.slots, T = a.len_q;
  int64_t c0, c1;
  chunk_bounds(P.lo, P.hi, c, P.chunks, c0, c1);
  float* const o_base = P.part_o + item * P.rows * P.ldo;
  float* const m_base = P.part_m + item * P.rows;
  float* const l_base = P.part_l + item * P.rows;
  std::memset(o_base, 0, sizeof(float) * static_cast<size_t>(P.rows * P.ldo));
  for (int64_t r = 0; r < P.rows; ++r) {
    m_base[r] = ninf();
    l_base[r] = 0.0f;
  }
  const Store* const kg = elems_at<Store>(a.k, b, g, 0);
  const Store* const vg = elems_at<Store>(a.v, b, g, 0);
  const int64_t ldk = a.k.stride_l, ldv = a.v.stride_l;

  for (int64_t j0 = c0; j0 < c1;) {
    const int64_t slot = j0 % S;
    int64_t j1 = j0 + kKeyBlock < c1 ? j0 + kKeyBlock : c1;
    if (j1 - j0 > S - slot) j1 = j0 + (S - slot);  // never cross the wrap point
    // The next block starts at slot j1 mod S; later row blocks find this one in cache.
    const int64_t pf_slot = j1 % S;
    int64_t pf_n = j1 < c1 ? c1 - j1 : 0;
    if (pf_n > kKeyBlock) pf_n = kKeyBlock;
    if (pf_n > S - pf_slot) pf_n = S - pf_slot;
    for (int64_t rb = 0; rb < P.rows; rb += kRowBlock) {
      const int R = P.rows - rb < kRowBlock ? static_cast<int>(P.rows - rb) : kRowBlock;
      Row rows[kRowBlock];
      int64_t max_hi = 0, min_lo = a.length;
      for (int i = 0; i < R; ++i) {
        const int64_t r = rb + i, h = g * P.G + r / T, t = r % T;  // row r = (head in group, t)
        Row& row = rows[i];
        row.q = row_at(a.q, b, h, t);
        a.rule.range(a.length - T + t, a.length, row.lo, row.hi);
        row.mask_off = a.mask_kind == AttentionMask::none
                           ? 0
                           : b * a.mask_stride[0] + h * a.mask_stride[1] + t * a.mask_stride[2];
        row.rh = a.rel.h_table ? a.rel.h_table + rel_offset(a.rel.h_stride, b, h, t) : nullptr;
        row.rw = a.rel.h_table ? a.rel.w_table + rel_offset(a.rel.w_stride, b, h, t) : nullptr;
        row.m = m_base + r;
        row.l = l_base + r;
        row.o = o_base + r * P.ldo;
        if (row.hi > max_hi) max_hi = row.hi;
        if (row.lo < min_lo) min_lo = row.lo;
      }
      if (j0 >= max_hi || j1 <= min_lo) continue;  // block invisible to all R rows
      const Store* kb = kg + slot * ldk;
      const Store* vb = vg + slot * ldv;
      const Ahead<Store> pf{kg + pf_slot * ldk, vg + pf_slot * ldv, rb == 0 ? pf_n : 0};
      const int64_t n = j1 - j0;
      switch (R) {
        case 8: attend_block<8 <= kRowBlock ? 8 : 1, E>(a, rows, kb, ldk, vb, ldv, j0, n, pf); break;
        case 7: attend_block<7 <= kRowBlock ? 7 : 1, E>(a, rows, kb, ldk, vb, ldv, j0, n, pf); break;
        case 6: attend_block<6 <= kRowBlock ? 6 : 1, E>(a, rows, kb, ldk, vb, ldv, j0, n, pf); break;
        case 5: attend_block<5 <= kRowBlock ? 5 : 1, E>(a, rows, kb, ldk, vb, ldv, j0, n, pf); break;
        case 4: attend_block<4, E>(a, rows, kb, ldk, vb, ldv, j0, n, pf); break;
        case 3: attend_block<3, E>(a, rows, kb, ldk, vb, ldv, j0, n, pf); break;
        case 2: attend_block<2, E>(a, rows, kb, ldk, vb, ldv, j0, n, pf); break;
        default: attend_block<1, E>(a, rows, kb, ldk, vb, ldv, j0, n, pf); break;
      }
    }
    j0 = j1;
  }
}

// out row (b, h, t): log-sum-exp merge of its chunk partials, in chunk order.
void merge_row(const Problem& P, int64_t row) {
  const DecodeArgs& a = *P.a;
  const int64_t T = a.len_q;
  const int64_t t = row % T, bh = row / T, b = bh / a.heads_q, h = bh % a.heads_q;
  const int64_t r = (h % P.G) * T + t;
  const int64_t i0 = (b * a.heads_kv + h / P.G) * P.chunks * P.rows + r;  // chunk 0's partial
  merge_partials(P.chunks, P.part_m + i0, P.part_l + i0, P.rows, P.part_o + i0 * P.ldo,
                 P.rows * P.ldo, a.dim_v, const_cast<float*>(row_at(a.out, b, h, t)));
}

}  // namespace

int64_t split_chunks(int64_t items, int64_t keys) {
  int64_t chunks = ceil_div(kTargetItems, items > 0 ? items : 1);
  const int64_t max_chunks = ceil_div(keys, kMinChunkKeys);
  if (chunks > max_chunks) chunks = max_chunks;
  return chunks < 1 ? 1 : chunks;
}

void merge_partials(int64_t chunks, const float* m, const float* l, int64_t ml_stride,
                    const float* o, int64_t o_stride, int64_t dv, float* y) {
  float M = ninf();
  for (int64_t c = 0; c < chunks; ++c)
    if (m[c * ml_stride] > M) M = m[c * ml_stride];
  if (M == ninf()) {  // no visible key: zeros
    for_each_vec(dv, [&](int64_t d, int cnt) { store_n(y + d, Vec::zero(), cnt); });
    return;
  }
  float L = 0.0f;
  for (int64_t c = 0; c < chunks; ++c)
    if (m[c * ml_stride] != ninf()) L += l[c * ml_stride] * std::exp(m[c * ml_stride] - M);
  const Vec inv = Vec::broadcast(1.0f / L);
  for_each_vec(dv, [&](int64_t d, int cnt) {
    Vec acc = Vec::zero();
    for (int64_t c = 0; c < chunks; ++c) {
      if (m[c * ml_stride] == ninf()) continue;  // e^(-inf - M) = 0: skip (o may be stale)
      const Vec w = Vec::broadcast(std::exp(m[c * ml_stride] - M));
      acc = fmadd(w, load_n(o + c * o_stride + d, cnt), acc);
    }
    store_n(y + d, acc * inv, cnt);
  });
}

void decode_attention(const DecodeArgs& a) {
  if (a.batch == 0 || a.heads_q == 0 || a.len_q == 0 || a.dim_v == 0) return;
  Problem P{};
  P.a = &a;
  P.G = a.heads_q / a.heads_kv;
  P.rows = P.G * a.len_q;
  P.ldo = a.dim_v;
  // Keys any query sees: the first query's lower bound to the last one's upper bound
  // (key_rule.h: both are monotone in the position), inside the stored keys.
  int64_t lo0, hi0, lo1, hi1;
  a.rule.range(a.length - a.len_q, a.length, lo0, hi0);
  a.rule.range(a.length - 1, a.length, lo1, hi1);
  P.lo = lo0 > a.first_key ? lo0 : a.first_key;
  P.hi = hi1;
  if (P.hi < P.lo) P.hi = P.lo;  // no visible key at all: one empty chunk, zeros
  const int64_t groups = a.batch * a.heads_kv;
  P.chunks = split_chunks(groups, P.hi - P.lo);
  const int64_t items = groups * P.chunks;
  AlignedFloats part_o(static_cast<size_t>(items * P.rows * P.ldo));
  AlignedFloats part_ml(static_cast<size_t>(2 * items * P.rows));
  P.part_o = part_o.data();
  P.part_m = part_ml.data();
  P.part_l = part_ml.data() + items * P.rows;
  parallel_for_each_dynamic(items, [&](int64_t item) {
    switch (a.kv_dtype) {
      case KVDtype::float16: attend_item<Float16, uint16_t>(P, item); break;
      case KVDtype::bfloat16: attend_item<BFloat16, uint16_t>(P, item); break;
      default: attend_item<Float32, float>(P, item); break;
    }
  });
  // Rows per merge chunk: a row's merge is ~chunks x Dv multiply-adds, far below a thread's
  // grain, so 16 rows (~2k FMAs at Dv = 128) per chunk keeps small problems on one thread.
  constexpr int64_t kMergeRowsGrain = 16;
  parallel_for(a.batch * a.heads_q * a.len_q, kMergeRowsGrain, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) merge_row(P, r);
  });
}

}  // namespace FASTATTN_ISA_NAMESPACE
}  // namespace fastattn

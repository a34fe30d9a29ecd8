// KV cache: ring-buffer append and split-KV decode attention, read in place from the ring.
//
// append: per (batch, kv head), the T new rows go to slots start mod S onward: one memcpy run,
// or two when the ring wraps. Cost O(T), independent of how many tokens came before.
//
// attend (flash-decoding over the ring):
//   * The visible absolute range [lo, length) is cut into C chunks. C depends on the problem
//     only (enough batch x kv-head x chunk items to fill the cores, >= 256 keys per chunk),
//     never on the thread count, so the bits are the same for any number of threads.
//   * One work item = (batch, kv head, chunk). It walks its keys in blocks of <= 64 that never
//     cross the ring's wrap point, so each block is one contiguous run of K and V rows read
//     directly from the ring (no reordering copy). All G = Hq / Hkv query heads of the group
//     and all T query rows are processed against a block while it sits in L1/L2: each K/V row
//     is read from memory once per group.
//   * Rows go in register blocks of up to 4: scores s = scale q.k (one K load feeds 4 FMAs),
//     then the online-softmax update per row (Milakov & Gimelshein):
//       m' = max(m, max_j s_j),  p_j = exp(s_j - m'),  l = l e^(m - m') + sum_j p_j,
//       o = o e^(m - m') + sum_j p_j v_j
//     with the P.V product accumulated in registers over the block (2 vectors x 4 rows).
//   * Masking by absolute position (causal for T > 1, the sliding window) sets scores to -inf;
//     a row with no visible key in a chunk leaves the partial (m = -inf, l = 0, o = 0).
//   * Partials (m_c, l_c, o_c) of a row are merged in chunk order by the log-sum-exp rule:
//       M = max_c m_c,  out = sum_c e^(m_c - M) o_c / sum_c e^(m_c - M) l_c.
// Numerics: float32 throughout; exp ~2 ulp (core/vec_math.h); o and l accumulate <= 64 terms
// per block plus one rescale per block, so the error grows with the number of blocks in a
// chunk, ~(64 + keys/64) eps relative to sum_j p_j |v_j| (tests/test_kv_cache.py).
#include "kernels/kv_cache.h"

#include <cmath>
#include <cstring>
#include <limits>

#include "core/memory.h"
#include "core/parallel.h"
#include "core/reduce.h"

namespace fastattn {
namespace FASTATTN_ISA_NAMESPACE {
namespace {

constexpr int64_t kKeyBlock = 64;     // keys per online-softmax step; their scores stay in L1
constexpr int kRowBlock = 4;          // query rows sharing one pass over a key block
constexpr int64_t kMinChunk = 256;    // keys per split-KV chunk, at least
constexpr int64_t kTargetItems = 64;  // (batch, kv head, chunk) items wanted for load balance

void append(float* kstore, float* vstore, const float* k, const float* v, int64_t B,
            int64_t Hkv, int64_t S, int64_t D, int64_t T, int64_t start) {
  const int64_t slot = start % S;
  const int64_t first = T < S - slot ? T : S - slot;  // rows before the wrap point
  const size_t row_bytes = static_cast<size_t>(D) * sizeof(float);
  const int64_t grain = T * D >= 16384 ? 1 : 16384 / (T * D > 0 ? T * D : 1);
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

// Everything one attend call shares.
struct Problem {
  const float *kstore, *vstore, *q;
  int64_t Hq, Hkv, G, S, D, T, length, window, lo, chunks, rows;
  float scale;
  float *part_o, *part_m, *part_l;  // per (item, row): o (D floats), m, l
};

// Asks for the K and V rows of the next key block (into L2) while this one is computed:
// the kernel streams from memory, and hardware prefetchers alone leave it latency bound
// (the P.V loop walks V by columns).
inline void prefetch_row(const float* p, int64_t D) {
#if defined(__GNUC__) || defined(__clang__)
  for (int64_t d = 0; d < D; d += 16) __builtin_prefetch(p + d, 0, 2);
#else
  (void)p; (void)D;
#endif
}

// One register block of R query rows against the contiguous key run [j0, j0 + n) whose first
// row is at kb / vb. qr: the rows' queries; pos / wstart: their positions and first visible
// key; m, l, o: their running state. pf_k, pf_v: the next block's first rows (pf_n of them)
// to prefetch, pf_n = 0 for none.
template <int R>
void attend_block(const Problem& P, const float* const* qr, const int64_t* pos,
                  const int64_t* wstart, float* m, float* l, float* const* o, const float* kb,
                  const float* vb, int64_t j0, int64_t n, const float* pf_k, const float* pf_v,
                  int64_t pf_n) {
  constexpr int W = Vec::size;
  const int64_t D = P.D;
  const float ninf = -std::numeric_limits<float>::infinity();
  alignas(64) float s[R][kKeyBlock];

  // Scores, two keys at a time: each K row is loaded once for the R queries, and the 2R
  // independent accumulators hide the FMA latency (one chain per row would stall on it).
  int64_t j = 0;
  for (; j + 2 <= n; j += 2) {
    for (int64_t i = j; i < j + 2 && i < pf_n; ++i) {
      prefetch_row(pf_k + i * D, D);
      prefetch_row(pf_v + i * D, D);
    }
    const float* k0 = kb + j * D;
    const float* k1 = k0 + D;
    Vec a0[R], a1[R];
    for (int r = 0; r < R; ++r) { a0[r] = Vec::zero(); a1[r] = Vec::zero(); }
    int64_t d = 0;
    for (; d + W <= D; d += W) {
      const Vec kv0 = Vec::load(k0 + d), kv1 = Vec::load(k1 + d);
      for (int r = 0; r < R; ++r) {
        const Vec qv = Vec::load(qr[r] + d);
        a0[r] = fmadd(qv, kv0, a0[r]);
        a1[r] = fmadd(qv, kv1, a1[r]);
      }
    }
    if (d < D) {
      const int cnt = static_cast<int>(D - d);
      const Vec kv0 = Vec::load_partial(k0 + d, cnt), kv1 = Vec::load_partial(k1 + d, cnt);
      for (int r = 0; r < R; ++r) {
        const Vec qv = Vec::load_partial(qr[r] + d, cnt);
        a0[r] = fmadd(qv, kv0, a0[r]);
        a1[r] = fmadd(qv, kv1, a1[r]);
      }
    }
    for (int r = 0; r < R; ++r) {
      s[r][j] = hsum(a0[r]) * P.scale;
      s[r][j + 1] = hsum(a1[r]) * P.scale;
    }
  }
  for (; j < n; ++j) {
    const float* kj = kb + j * D;
    Vec acc[R];
    for (int r = 0; r < R; ++r) acc[r] = Vec::zero();
    for (int64_t d = 0; d < D; d += W) {
      const int cnt = D - d < W ? static_cast<int>(D - d) : W;
      const Vec kv = load_n(kj + d, cnt);
      for (int r = 0; r < R; ++r) acc[r] = fmadd(load_n(qr[r] + d, cnt), kv, acc[r]);
    }
    for (int r = 0; r < R; ++r) s[r][j] = hsum(acc[r]) * P.scale;
  }

  // Mask by absolute position, then the online-softmax update of m, l and the rescale of o.
  for (int r = 0; r < R; ++r) {
    if (j0 + n - 1 > pos[r] || j0 < wstart[r]) {  // block straddles a mask edge
      for (int64_t i = 0; i < n; ++i)
        if (j0 + i > pos[r] || j0 + i < wstart[r]) s[r][i] = ninf;
    }
    const float bm = row_max(s[r], n);
    const float mnew = bm > m[r] ? bm : m[r];
    if (mnew == ninf) {  // nothing visible yet: weights 0, state unchanged (no inf - inf)
      for (int64_t i = 0; i < n; ++i) s[r][i] = 0.0f;
      continue;
    }
    const Vec vm = Vec::broadcast(mnew);
    Vec sum = Vec::zero();
    for (int64_t i = 0; i < n; i += W) {
      const int cnt = n - i < W ? static_cast<int>(n - i) : W;
      const Vec e = exp(load_n(s[r] + i, cnt, ninf) - vm);  // padding lanes: exp(-inf) = 0
      store_n(s[r] + i, e, cnt);
      sum = sum + e;
    }
    const float alpha = m[r] == ninf ? 0.0f : std::exp(m[r] - mnew);
    l[r] = l[r] * alpha + hsum(sum);
    m[r] = mnew;
    if (alpha != 1.0f) {
      const Vec va = Vec::broadcast(alpha);
      for (int64_t d = 0; d < D; d += W) {
        const int cnt = D - d < W ? static_cast<int>(D - d) : W;
        store_n(o[r] + d, load_n(o[r] + d, cnt) * va, cnt);
      }
    }
  }

  // o_r += sum_j p_rj v_j, two vectors of D at a time held in registers across the block.
  int64_t d = 0;
  for (; d + 2 * W <= D; d += 2 * W) {
    Vec a0[R], a1[R];
    for (int r = 0; r < R; ++r) { a0[r] = Vec::load(o[r] + d); a1[r] = Vec::load(o[r] + d + W); }
    for (int64_t i = 0; i < n; ++i) {
      const float* vj = vb + i * D + d;
      const Vec v0 = Vec::load(vj), v1 = Vec::load(vj + W);
      for (int r = 0; r < R; ++r) {
        const Vec p = Vec::broadcast(s[r][i]);
        a0[r] = fmadd(p, v0, a0[r]);
        a1[r] = fmadd(p, v1, a1[r]);
      }
    }
    for (int r = 0; r < R; ++r) { a0[r].store(o[r] + d); a1[r].store(o[r] + d + W); }
  }
  for (; d < D; d += W) {
    const int cnt = D - d < W ? static_cast<int>(D - d) : W;
    Vec a[R];
    for (int r = 0; r < R; ++r) a[r] = load_n(o[r] + d, cnt);
    for (int64_t i = 0; i < n; ++i) {
      const Vec vv = load_n(vb + i * D + d, cnt);
      for (int r = 0; r < R; ++r) a[r] = fmadd(Vec::broadcast(s[r][i]), vv, a[r]);
    }
    for (int r = 0; r < R; ++r) store_n(o[r] + d, a[r], cnt);
  }
}

// Work item (b, g, c): the group's G * T query rows over chunk c of the visible keys.
void attend_item(const Problem& P, int64_t item) {
  const int64_t c = item % P.chunks, bg = item / P.chunks;
  const int64_t b = bg / P.Hkv, g = bg % P.Hkv;
  const int64_t nkeys = P.length - P.lo, D = P.D;
  const int64_t c0 = P.lo + nkeys * c / P.chunks, c1 = P.lo + nkeys * (c + 1) / P.chunks;
  const float ninf = -std::numeric_limits<float>::infinity();
  float* const o_base = P.part_o + item * P.rows * D;
  float* const m_base = P.part_m + item * P.rows;
  float* const l_base = P.part_l + item * P.rows;
  std::memset(o_base, 0, sizeof(float) * static_cast<size_t>(P.rows * D));
  for (int64_t r = 0; r < P.rows; ++r) { m_base[r] = ninf; l_base[r] = 0.0f; }
  const float* const kg = P.kstore + bg * P.S * D;
  const float* const vg = P.vstore + bg * P.S * D;

  for (int64_t j0 = c0; j0 < c1;) {
    const int64_t slot = j0 % P.S;
    int64_t j1 = j0 + kKeyBlock < c1 ? j0 + kKeyBlock : c1;
    if (j1 - j0 > P.S - slot) j1 = j0 + (P.S - slot);  // never cross the wrap point
    for (int64_t rb = 0; rb < P.rows; rb += kRowBlock) {
      const int R = P.rows - rb < kRowBlock ? static_cast<int>(P.rows - rb) : kRowBlock;
      const float* qr[kRowBlock];
      float* o[kRowBlock];
      int64_t pos[kRowBlock], ws[kRowBlock];
      int64_t maxpos = -1, minws = P.length;
      for (int i = 0; i < R; ++i) {
        const int64_t r = rb + i, hg = r / P.T, t = r % P.T;  // row r = (head in group, t)
        qr[i] = P.q + ((b * P.Hq + g * P.G + hg) * P.T + t) * D;
        o[i] = o_base + r * D;
        pos[i] = P.length - P.T + t;
        ws[i] = P.window > 0 ? pos[i] - P.window + 1 : 0;
        if (pos[i] > maxpos) maxpos = pos[i];
        if (ws[i] < minws) minws = ws[i];
      }
      if (j0 > maxpos || j1 - 1 < minws) continue;  // block invisible to all R rows
      const float* kb = kg + slot * D;
      const float* vb = vg + slot * D;
      float* m = m_base + rb;
      float* l = l_base + rb;
      // The next block starts at slot j1 mod S; later row blocks find this one in cache.
      const int64_t pf_slot = j1 % P.S;
      int64_t pf_n = rb == 0 && j1 < c1 ? c1 - j1 : 0;
      if (pf_n > kKeyBlock) pf_n = kKeyBlock;
      if (pf_n > P.S - pf_slot) pf_n = P.S - pf_slot;
      const float* pk = kg + pf_slot * D;
      const float* pv = vg + pf_slot * D;
      const int64_t n = j1 - j0;
      switch (R) {
        case 4: attend_block<4>(P, qr, pos, ws, m, l, o, kb, vb, j0, n, pk, pv, pf_n); break;
        case 3: attend_block<3>(P, qr, pos, ws, m, l, o, kb, vb, j0, n, pk, pv, pf_n); break;
        case 2: attend_block<2>(P, qr, pos, ws, m, l, o, kb, vb, j0, n, pk, pv, pf_n); break;
        default: attend_block<1>(P, qr, pos, ws, m, l, o, kb, vb, j0, n, pk, pv, pf_n); break;
      }
    }
    j0 = j1;
  }
}

// out row (b, h, t): log-sum-exp merge of its chunk partials, in chunk order.
void merge_row(const Problem& P, int64_t row, float* out) {
  constexpr int W = Vec::size;
  const int64_t t = row % P.T, bh = row / P.T, b = bh / P.Hq, h = bh % P.Hq;
  const int64_t g = h / P.G, r = (h % P.G) * P.T + t, D = P.D;
  const int64_t item0 = (b * P.Hkv + g) * P.chunks;
  float M = -std::numeric_limits<float>::infinity();
  for (int64_t c = 0; c < P.chunks; ++c) {
    const float mc = P.part_m[(item0 + c) * P.rows + r];
    if (mc > M) M = mc;
  }
  float* y = out + row * D;
  if (M == -std::numeric_limits<float>::infinity()) {  // no visible key (not reachable via API)
    std::memset(y, 0, sizeof(float) * static_cast<size_t>(D));
    return;
  }
  float L = 0.0f;
  for (int64_t c = 0; c < P.chunks; ++c) {
    const int64_t i = (item0 + c) * P.rows + r;
    if (P.part_m[i] != -std::numeric_limits<float>::infinity())
      L += P.part_l[i] * std::exp(P.part_m[i] - M);
  }
  const Vec inv = Vec::broadcast(1.0f / L);
  for (int64_t d = 0; d < D; d += W) {
    const int cnt = D - d < W ? static_cast<int>(D - d) : W;
    Vec acc = Vec::zero();
    for (int64_t c = 0; c < P.chunks; ++c) {
      const int64_t i = (item0 + c) * P.rows + r;
      if (P.part_m[i] == -std::numeric_limits<float>::infinity()) continue;
      const Vec w = Vec::broadcast(std::exp(P.part_m[i] - M));
      acc = fmadd(w, load_n(P.part_o + i * D + d, cnt), acc);
    }
    store_n(y + d, acc * inv, cnt);
  }
}

void attend(const float* kstore, const float* vstore, const float* q, float* out, int64_t B,
            int64_t Hq, int64_t Hkv, int64_t S, int64_t D, int64_t T, int64_t length,
            int64_t window, float scale) {
  if (B == 0 || Hq == 0 || T == 0 || D == 0) return;
  Problem P{};
  P.kstore = kstore; P.vstore = vstore; P.q = q;
  P.Hq = Hq; P.Hkv = Hkv; P.G = Hq / Hkv; P.S = S; P.D = D; P.T = T;
  P.length = length; P.window = window; P.scale = scale;
  // First key any query sees: stored, and (with a window) inside the first query's window.
  P.lo = length > S ? length - S : 0;
  if (window > 0 && length - T - window + 1 > P.lo) P.lo = length - T - window + 1;
  const int64_t nkeys = length - P.lo, groups = B * Hkv;
  int64_t chunks = (kTargetItems + groups - 1) / groups;
  const int64_t max_chunks = (nkeys + kMinChunk - 1) / kMinChunk;
  if (chunks > max_chunks) chunks = max_chunks;
  P.chunks = chunks < 1 ? 1 : chunks;
  P.rows = P.G * T;
  const int64_t items = groups * P.chunks;
  AlignedFloats part_o(static_cast<size_t>(items * P.rows * D));
  AlignedFloats part_ml(static_cast<size_t>(2 * items * P.rows));
  P.part_o = part_o.data();
  P.part_m = part_ml.data();
  P.part_l = part_ml.data() + items * P.rows;
  parallel_for_each_dynamic(items, [&](int64_t item) { attend_item(P, item); });
  const int64_t out_rows = B * Hq * T;
  parallel_for(out_rows, 16, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) merge_row(P, r, out);
  });
}

}  // namespace

void register_kernels(KVCacheKernels& t, Tag) {
  t.append = append;
  t.attend = attend;
}

}  // namespace FASTATTN_ISA_NAMESPACE
}  // namespace fastattn

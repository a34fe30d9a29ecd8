// Flash-style attention forward (contract in attention.h).
//
// Algorithm (online softmax; Milakov & Gimelshein 2018, FlashAttention): a tile of R query
// rows keeps, per row, the running maximum m, the running sum l and an unnormalised output
// o (R x Dv). For each block of Bk keys with scores s:
//     m' = max(m, max_j s_j),  alpha = exp(m - m'),  p_j = exp(s_j - m')
//     l  = alpha l + sum_j p_j,  o = alpha o + sum_j p_j V[j]
// and finally O = o / l. The Lq x Lk score matrix never exists; memory is O(tile) per thread.
// A row that has seen no allowed key has m = -inf; its exponentials are taken against 0
// instead (exp(-inf - 0) = 0, and alpha = exp(-inf - m') = 0), never against -inf, which would
// give exp(-inf + inf) = NaN. A row that ends with l = 0 outputs zeros.
//
// Tiles and blocking (tiles.h has the micro-kernels). A tile is `heads_tile` query heads of one
// key/value group x a block of up to R queries, all against the same K/V blocks, so K and V
// are read once for the whole group (small Lq: the G heads of a group stack into the rows; Lq = 1
// itself goes to the split-KV decode kernel, decode.cpp).
// Scores are stored transposed, S^T (Bk x R), which makes the softmax lane-wise. Sizes for a
// Zen 3 core (32 KiB L1d, 512 KiB L2): R = 96 rows, Bk = 128 keys. Per tile at D = Dv = 128:
// Q^T 48 KiB + S^T 48 KiB + o 48 KiB + one K and one V block 64 KiB each = 272 KiB, inside
// L2; the micro-kernels' inner operands (a 128 x 16 Q^T panel = 8 KiB, six P^T rows) stay in L1.
// Causal / window: each tile visits only keys [min_r lo_r, max_r hi_r) (blocks entirely
// masked are skipped) and masks element-wise only blocks that straddle a row's boundary.
// The decomposed relative-position bias (attention.h, AttentionRelPos) is added to each score
// block from the rows' two small tables, packed per block (rel_bias), never as an Lq x Lk
// bias.
//
// Decode and split keys (few tiles over long keys): forward hands a single query row, or few
// rows per key/value head, to the split-KV decode kernel (decode.h); with many rows the tiles
// here cut their keys into chunks by the decode kernel's policy (split_chunks) and merge the
// chunks' partial (m, l, o) with its log-sum-exp rule (merge_partials)
//     M = max_c m_c,  O = sum_c e^(m_c - M) o_c / sum_c e^(m_c - M) l_c
// in chunk order. Every choice depends on the shapes only (never on the thread count).
//
// Threads: work units (tile, chunk) are handed out dynamically, heaviest (causal: the last
// query blocks) first; each unit is computed by one thread with its own scratch, in an order
// fixed by the shapes, so results are bit-identical for any thread count.
//
// Numerics: float32 throughout. Dot products accumulate sequentially over D in FMA, then are
// multiplied by scale (never q first, which can overflow where the score does not) and
// saturated to +-FLT_MAX (decode.h: no inf, so no inf - inf in the softmax); exp is
// core/vec_math.h's (~2 ulp); sums of p in two interleaved lane accumulators per block, blocks
// chained by l = alpha l + sum.
#include "kernels/attention/attention.h"

#include <cmath>
#include <limits>
#include <vector>

#include "core/memory.h"
#include "core/parallel.h"
#include "core/reduce.h"
#include "core/util.h"
#include "kernels/attention/decode.h"
#include "kernels/attention/key_rule.h"
#include "kernels/attention/tiles.h"

namespace fastattn {
namespace FASTATTN_ISA_NAMESPACE {
namespace {

using namespace attention_tiles;

constexpr int64_t kMaxRows = 96;     // R: query rows per tile (a multiple of 6, 16 and 32)
constexpr int64_t kBlockKeys = 128;  // Bk: keys per block
// Path choice (forward), from the shapes only (never the thread count):
//   * the split-KV decode kernel (decode.cpp) for a single query row, and for few tiles
//     (< kDecodeMaxTiles) over long keys (>= kDecodeMinKeys) with few rows per kv head
//     (<= kDecodeMaxRows): it streams K/V at a higher fraction of the bandwidth;
//   * otherwise this tiled kernel, whose register tiles compute many rows much faster (the
//     decode kernel pays a horizontal sum per score: 8x slower at 64 rows, measured); with few
//     tiles over long keys it splits the keys by the decode kernel's policy and merge.
constexpr int64_t kDecodeMaxTiles = 32;
constexpr int64_t kDecodeMinKeys = 1024;
constexpr int64_t kDecodeMaxRows = 8;

inline float ninf() { return -std::numeric_limits<float>::infinity(); }

// How the work is cut; a function of the shapes only.
struct Plan {
  int64_t group;       // G = Hq / Hkv
  int64_t q_block;     // queries per tile (the last block may be shorter)
  int64_t n_qblocks;
  int64_t heads_tile;  // query heads per tile (> 1 only when a q block is all of Lq)
  int64_t n_hsub;      // ceil(G / heads_tile)
  int64_t items;       // tiles: B * Hkv * n_hsub * n_qblocks
  int64_t rows;        // max rows of a tile
  int64_t rp;          // rows padded to whole QK panels (lanes of S^T)
  int nv;              // vectors per QK panel: 1 for narrow tiles, else 2
  int64_t ldo;         // row stride of the o scratch
};

Plan make_plan(const AttentionArgs& a) {
  constexpr int W = Vec::size;
  Plan p{};
  p.group = a.heads_q / a.heads_kv;
  p.n_qblocks = ceil_div(a.len_q, kMaxRows);
  p.q_block = ceil_div(a.len_q, p.n_qblocks);  // balanced block lengths
  p.heads_tile = 1;
  if (p.n_qblocks == 1) {
    p.heads_tile = kMaxRows / a.len_q;
    if (p.heads_tile > p.group) p.heads_tile = p.group;
    if (p.heads_tile < 1) p.heads_tile = 1;
  }
  p.n_hsub = ceil_div(p.group, p.heads_tile);
  p.items = a.batch * a.heads_kv * p.n_hsub * p.n_qblocks;
  p.rows = p.heads_tile * p.q_block;
  p.nv = p.rows > W ? 2 : 1;
  p.rp = round_up(p.rows, p.nv * W);
  p.ldo = round_up(a.dim_v, W);
  return p;
}

// One tile: which query rows and which keys.
struct Tile {
  int64_t b, hkv, h0;  // batch, kv head, first query head of the tile
  int64_t nh;          // query heads in the tile
  int64_t i0, nq;      // first query, queries per head
  int64_t nr;          // rows = nh * nq; row r is head h0 + r / nq, query i0 + r % nq
};

Tile tile_of(const AttentionArgs& a, const Plan& p, int64_t item) {
  // Query blocks of one (batch, kv head, head subgroup) are consecutive, so the K/V of that
  // head stay in L2/L3 across its tiles; within a head the heaviest block (causal: the last,
  // it sees the most keys) comes first, so the smallest items are left for the end.
  const int64_t qb = p.n_qblocks - 1 - item % p.n_qblocks;
  int64_t rest = item / p.n_qblocks;
  const int64_t hs = rest % p.n_hsub;
  rest /= p.n_hsub;
  Tile t{};
  t.hkv = rest % a.heads_kv;
  t.b = rest / a.heads_kv;
  const int64_t g0 = hs * p.heads_tile;
  t.nh = p.group - g0 < p.heads_tile ? p.group - g0 : p.heads_tile;
  t.h0 = t.hkv * p.group + g0;
  t.i0 = qb * p.q_block;
  t.nq = a.len_q - t.i0 < p.q_block ? a.len_q - t.i0 : p.q_block;
  t.nr = t.nh * t.nq;
  return t;
}

// The causal / window rule of this problem: every |p - j| is below Lq + Lk (key_rule.h).
inline KeyRule key_rule(const AttentionArgs& a) {
  return KeyRule(a.causal, a.window, a.len_q + a.len_k);
}

// Allowed keys of query i: [lo, hi), empty when lo >= hi. Position p = i + Lk - Lq.
inline void key_range(const AttentionArgs& a, int64_t i, int64_t& lo, int64_t& hi) {
  key_rule(a).range(i + a.len_k - a.len_q, a.len_k, lo, hi);
}

// Relative-position slots (transposed table columns, rp lanes each) a block needs at most:
// grid rows (c0 + nk - 1) / kw - c0 / kw + 1 <= Bk + 1, grid columns <= Bk (see rel_bias).
constexpr int64_t kRelRowSlots = kBlockKeys + 1;
constexpr int64_t kRelColSlots = kBlockKeys;

// Per-thread scratch, sized by the plan.
struct Scratch {
  AlignedFloats buf;
  float *qt, *st, *o, *m, *l, *alpha, *lo, *hi;
  float *rel_h, *rel_w;  // transposed relative-position tables (only with a.rel)
  std::vector<const float*> bias_h, bias_w;  // per key of a block: its H^T and W^T slots
  Scratch(const AttentionArgs& a, const Plan& p)
      : buf(static_cast<std::size_t>(
            a.dim * p.rp + kBlockKeys * p.rp + p.rows * p.ldo + 5 * p.rp +
            (a.rel.h_table ? (kRelRowSlots + kRelColSlots) * p.rp : 0))) {
    qt = buf.data();
    st = qt + a.dim * p.rp;
    o = st + kBlockKeys * p.rp;
    m = o + p.rows * p.ldo;
    l = m + p.rp;
    alpha = l + p.rp;
    lo = alpha + p.rp;
    hi = lo + p.rp;
    rel_h = hi + p.rp;
    rel_w = rel_h + kRelRowSlots * p.rp;
    if (a.rel.h_table) {
      bias_h.resize(kBlockKeys);
      bias_w.resize(kBlockKeys);
    }
  }
};

inline const float* row_ptr(const AttentionTensor& t, int64_t b, int64_t h, int64_t i) {
  return t.data + b * t.stride_b + h * t.stride_h + i * t.stride_l;
}

inline int64_t mask_offset(const AttentionArgs& a, int64_t b, int64_t h, int64_t i) {
  return b * a.mask_stride[0] + h * a.mask_stride[1] + i * a.mask_stride[2];
}

// Q^T (d x rp) = Q of the tile's rows, zero in the padding lanes (qk_tile scales the scores).
void pack_q(const AttentionArgs& a, const Plan& p, const Tile& t, float* qt) {
  const int64_t d = a.dim, rp = p.rp;
  for (int64_t r = 0; r < t.nr; ++r) {
    const float* q = row_ptr(a.q, t.b, t.h0 + r / t.nq, t.i0 + r % t.nq);
    for (int64_t x = 0; x < d; ++x) qt[x * rp + r] = q[x];
  }
  for (int64_t x = 0; x < d; ++x)
    for (int64_t r = t.nr; r < rp; ++r) qt[x * rp + r] = 0.0f;
}

// Adds the user's mask for keys [c0, c0 + nk) to S^T: bool false -> -inf, float -> + bias.
void apply_user_mask(const AttentionArgs& a, const Plan& p, const Tile& t, int64_t c0,
                     int64_t nk, float* st) {
  const int64_t rp = p.rp, sk = a.mask_stride[3];
  const bool shared = (t.nh == 1 || a.mask_stride[1] == 0) && (t.nq == 1 || a.mask_stride[2] == 0);
  const int64_t base0 = mask_offset(a, t.b, t.h0, t.i0) + c0 * sk;
  if (shared) {  // every row reads the same mask row (key padding): one value per key
    for (int64_t c = 0; c < nk; ++c) {
      float* s = st + c * rp;
      if (a.mask_kind == AttentionMask::boolean) {
        if (static_cast<const unsigned char*>(a.mask)[base0 + c * sk]) continue;
        const Vec fill = Vec::broadcast(ninf());
        for (int64_t r = 0; r < rp; r += Vec::size) fill.store(s + r);
      } else {
        const Vec bias = Vec::broadcast(static_cast<const float*>(a.mask)[base0 + c * sk]);
        const Vec big = Vec::broadcast(kMaxScore);  // add_bias (decode.h), lane-wise
        for (int64_t r = 0; r < rp; r += Vec::size) min(big, Vec::load(s + r) + bias).store(s + r);
      }
    }
    return;
  }
  for (int64_t r = 0; r < t.nr; ++r) {
    const int64_t base = mask_offset(a, t.b, t.h0 + r / t.nq, t.i0 + r % t.nq) + c0 * sk;
    if (a.mask_kind == AttentionMask::boolean) {
      const unsigned char* mb = static_cast<const unsigned char*>(a.mask) + base;
      for (int64_t c = 0; c < nk; ++c)
        if (!mb[c * sk]) st[c * rp + r] = ninf();
    } else {
      const float* mf = static_cast<const float*>(a.mask) + base;
      for (int64_t c = 0; c < nk; ++c) st[c * rp + r] = add_bias(st[c * rp + r], mf[c * sk]);
    }
  }
}

// ---- the relative-position bias (attention.h, AttentionRelPos) on a tile's score block.
// The tables of the tile's rows are packed transposed like S^T (slot x: the rows' entries,
// rp lanes), so the bias of key c of the block (key j = c0 + c) is a lane-wise sum of two slots,
//     S^T[c][:] = min(FLT_MAX, scaled score + (H^T[j / kw][:] + W^T[j % kw][:]))
// added by the QK micro-kernel as the scores leave its registers (tiles.h, ScoreBias: no
// extra pass over S^T). H^T holds the block's rows of the grid, j / kw from c0 / kw to
// (c0 + nk - 1) / kw: at most Bk + 1 slots. W^T holds all kw columns, packed once per unit
// when kw <= Bk (SAM: 14 or 64 columns), else the block's run of columns (consecutive modulo
// kw, nk <= Bk slots). So the scratch is O(Bk x rows) for any grid, and packing costs
// (slots x rows) copies per block (SAM global: 2 or 3 grid rows) against the block's
// nk x rows x D multiply-adds.

// dst[x * rp + r] = entry (first + x) mod period of row r's table, for x < n; 0 in padding lanes.
void pack_rel(const Plan& p, const Tile& t, const float* table, const int64_t (&stride)[4],
              int64_t first, int64_t n, int64_t period, float* dst) {
  const int64_t rp = p.rp;
  for (int64_t r = 0; r < t.nr; ++r) {  // each table row is read contiguously
    const float* row = table + rel_offset(stride, t.b, t.h0 + r / t.nq, t.i0 + r % t.nq);
    int64_t e = first;
    for (int64_t x = 0; x < n; ++x) {
      dst[x * rp + r] = row[e * stride[3]];
      if (++e == period) e = 0;
    }
  }
  for (int64_t x = 0; x < n; ++x)
    for (int64_t r = t.nr; r < rp; ++r) dst[x * rp + r] = 0.0f;
}

// Whether W^T holds every grid column for the whole unit (packed once), or only a block's run.
inline bool rel_columns_whole(const AttentionArgs& a) { return a.rel.kw <= kBlockKeys; }

// Packs the tables keys [c0, c0 + nk) need (W^T already, when whole) and points each key at
// its two slots: the bias the QK micro-kernel adds.
ScoreBias rel_bias(const AttentionArgs& a, const Plan& p, const Tile& t, int64_t c0, int64_t nk,
                   Scratch& sc) {
  const AttentionRelPos& rel = a.rel;
  const int64_t rp = p.rp, kw = rel.kw, row0 = c0 / kw;
  pack_rel(p, t, rel.h_table, rel.h_stride, row0, (c0 + nk - 1) / kw - row0 + 1, rel.kh, sc.rel_h);
  const bool whole = rel_columns_whole(a);
  if (!whole) pack_rel(p, t, rel.w_table, rel.w_stride, c0 % kw, nk, kw, sc.rel_w);
  int64_t hs = 0, col = c0 % kw;
  for (int64_t c = 0; c < nk; ++c) {
    sc.bias_h[c] = sc.rel_h + hs * rp;
    sc.bias_w[c] = sc.rel_w + (whole ? col : c) * rp;
    if (++col == kw) {
      col = 0;
      ++hs;
    }
  }
  return {sc.bias_h.data(), sc.bias_w.data()};
}

// Online-softmax update for one block of nk keys: S^T -> P^T in place, m, l, alpha updated.
// With `bounds`, key c of the block is first masked for lanes whose [lo, hi) (relative to the
// block start) excludes it.
void softmax_block(float* st, int64_t rp, int64_t nk, bool bounds, const float* lo,
                   const float* hi, float* m, float* l, float* alpha) {
  constexpr int W = Vec::size;
  const Vec minus_inf = Vec::broadcast(ninf()), zero = Vec::zero();
  for (int64_t r = 0; r < rp; r += W) {
    const Vec m_old = Vec::load(m + r);
    Vec mx = m_old;
    if (bounds) {
      const Vec vlo = Vec::load(lo + r), vhi = Vec::load(hi + r);
      for (int64_t c = 0; c < nk; ++c) {
        const Vec cv = Vec::broadcast(static_cast<float>(c));
        Vec s = Vec::load(st + c * rp + r);
        s = if_greater(vlo, cv, minus_inf, s);  // c < lo
        s = if_greater(vhi, cv, s, minus_inf);  // c >= hi
        s.store(st + c * rp + r);
        mx = max(mx, s);
      }
    } else {
      for (int64_t c = 0; c < nk; ++c) mx = max(mx, Vec::load(st + c * rp + r));
    }
    // Exponentials are taken against m_use: the maximum, or 0 for rows with no allowed key yet.
    const Vec m_use = if_greater(mx, minus_inf, mx, zero);
    const Vec a = exp(m_old - m_use);
    Vec s0 = zero, s1 = zero;
    int64_t c = 0;
    for (; c + 2 <= nk; c += 2) {
      const Vec p0 = exp(Vec::load(st + c * rp + r) - m_use);
      const Vec p1 = exp(Vec::load(st + (c + 1) * rp + r) - m_use);
      p0.store(st + c * rp + r);
      p1.store(st + (c + 1) * rp + r);
      s0 = s0 + p0;
      s1 = s1 + p1;
    }
    if (c < nk) {
      const Vec p0 = exp(Vec::load(st + c * rp + r) - m_use);
      p0.store(st + c * rp + r);
      s0 = s0 + p0;
    }
    fmadd(Vec::load(l + r), a, s0 + s1).store(l + r);
    mx.store(m + r);
    a.store(alpha + r);
  }
}

// Runs tile t over keys [k_begin, k_end): leaves the unnormalised o, m, l in the scratch.
void run_tile(const AttentionArgs& a, const Plan& p, const Tile& t, int64_t k_begin,
              int64_t k_end, Scratch& sc) {
  const int64_t rp = p.rp;
  for (int64_t r = 0; r < rp; ++r) {
    sc.m[r] = ninf();
    sc.l[r] = 0.0f;
  }
  for (int64_t r = 0; r < t.nr; ++r)
    for (int64_t x = 0; x < a.dim_v; ++x) sc.o[r * p.ldo + x] = 0.0f;
  if (k_begin >= k_end) return;
  pack_q(a, p, t, sc.qt);
  if (a.rel.h_table && rel_columns_whole(a))
    pack_rel(p, t, a.rel.w_table, a.rel.w_stride, 0, a.rel.kw, a.rel.kw, sc.rel_w);

  // Tightest bounds over the tile's rows: a block inside [max lo, min hi) needs no masking.
  int64_t inner_lo = 0, inner_hi = a.len_k;
  for (int64_t r = 0; r < t.nr; ++r) {
    int64_t lo, hi;
    key_range(a, t.i0 + r % t.nq, lo, hi);
    if (lo > inner_lo) inner_lo = lo;
    if (hi < inner_hi) inner_hi = hi;
  }
  const float* kbase = row_ptr(a.k, t.b, t.hkv, 0);
  const float* vbase = row_ptr(a.v, t.b, t.hkv, 0);
  for (int64_t c0 = k_begin; c0 < k_end; c0 += kBlockKeys) {
    const int64_t nk = k_end - c0 < kBlockKeys ? k_end - c0 : kBlockKeys;
    const bool bounds = c0 < inner_lo || c0 + nk > inner_hi;
    if (bounds) {
      // Relative bounds, clamped to [-1, Bk + 1] so the float comparisons are exact.
      const auto rel = [&](int64_t x) {
        const int64_t y = x - c0;
        return static_cast<float>(y < -1 ? -1 : (y > kBlockKeys + 1 ? kBlockKeys + 1 : y));
      };
      for (int64_t r = 0; r < t.nr; ++r) {
        int64_t lo, hi;
        key_range(a, t.i0 + r % t.nq, lo, hi);
        sc.lo[r] = rel(lo);
        sc.hi[r] = rel(hi);
      }
      for (int64_t r = t.nr; r < rp; ++r) {  // padding lanes: unmasked (never read back)
        sc.lo[r] = -1.0f;
        sc.hi[r] = static_cast<float>(kBlockKeys + 1);
      }
    }
    const float* lo = bounds ? sc.lo : nullptr;
    const float* hi = bounds ? sc.hi : nullptr;
    const float* kc = kbase + c0 * a.k.stride_l;
    const float* vc = vbase + c0 * a.v.stride_l;
    // Decode tiles (one row panel) stream K and V from memory: they prefetch ahead, up to
    // the end of this unit's keys.
    const int64_t avail = t.nr <= kMR ? k_end - c0 : 0;
    const ScoreBias bias = a.rel.h_table ? rel_bias(a, p, t, c0, nk, sc) : ScoreBias{nullptr, nullptr};
    if (p.nv == 2)
      qk_tile<2>(kc, a.k.stride_l, sc.qt, rp, a.dim, a.scale, nk, sc.st, lo, hi, t.nr, 0, bias);
    else
      qk_tile<1>(kc, a.k.stride_l, sc.qt, rp, a.dim, a.scale, nk, sc.st, lo, hi, t.nr, avail,
                 bias);
    if (a.mask_kind != AttentionMask::none) apply_user_mask(a, p, t, c0, nk, sc.st);
    softmax_block(sc.st, rp, nk, bounds, sc.lo, sc.hi, sc.m, sc.l, sc.alpha);
    pv_tile(sc.st, rp, vc, a.v.stride_l, nk, sc.o, p.ldo, sc.alpha, t.nr, a.dim_v, lo, hi,
            avail);
  }
}

// The keys a tile visits: the union of its rows' allowed ranges, [lo, hi).
void tile_key_range(const AttentionArgs& a, const Tile& t, int64_t& lo, int64_t& hi) {
  lo = a.len_k;
  hi = 0;
  // key_range's bounds are monotone in i, so the first and last query bound the union.
  int64_t l0, h0, l1, h1;
  key_range(a, t.i0, l0, h0);
  key_range(a, t.i0 + t.nq - 1, l1, h1);
  lo = l0 < l1 ? l0 : l1;
  hi = h0 > h1 ? h0 : h1;
  if (lo < 0) lo = 0;
  if (hi > a.len_k) hi = a.len_k;
}

// out rows of the tile = o / l (zeros where l == 0).
void write_output(const AttentionArgs& a, const Plan& p, const Tile& t, const float* o,
                  const float* l) {
  for (int64_t r = 0; r < t.nr; ++r) {
    float* y = const_cast<float*>(row_ptr(a.out, t.b, t.h0 + r / t.nq, t.i0 + r % t.nq));
    const float* orow = o + r * p.ldo;
    const bool empty = l[r] == 0.0f;  // no allowed key: zeros (a NaN l propagates as NaN)
    const Vec lv = Vec::broadcast(l[r]);
    for_each_vec(a.dim_v, [&](int64_t x, int cnt) {
      store_n(y + x, empty ? Vec::zero() : load_n(orow + x, cnt) / lv, cnt);
    });
  }
}

// The tiled flash kernel. Work unit = (tile, chunk of its keys). With splits > 1 (few tiles over
// long keys), each unit leaves its partial (m, l, o) and the chunks of a tile row are merged by
// the decode kernel's log-sum-exp rule (decode.h: split_chunks, chunk_bounds, merge_partials).
void forward_tiled(const AttentionArgs& a, const Plan& p, int64_t splits) {
  const int64_t units = p.items * splits;
  // Partial (m, l, o) per unit: m at [0, rp), l at [rp, 2 rp), o at 2 rp (rows x ldo).
  const int64_t part_stride = 2 * p.rp + p.rows * p.ldo;
  AlignedFloats partials(splits > 1 ? static_cast<std::size_t>(units * part_stride) : 0);
  parallel_for_each_dynamic_local(
      units, [&] { return Scratch(a, p); },
      [&](int64_t u, Scratch& sc) {
        const Tile t = tile_of(a, p, u / splits);
        int64_t lo, hi, begin, end;
        tile_key_range(a, t, lo, hi);
        chunk_bounds(lo, hi, u % splits, splits, begin, end);
        run_tile(a, p, t, begin, end, sc);
        if (splits == 1) {
          write_output(a, p, t, sc.o, sc.l);
          return;
        }
        float* part = partials.data() + u * part_stride;
        for (int64_t r = 0; r < t.nr; ++r) {
          part[r] = sc.m[r];
          part[p.rp + r] = sc.l[r];
          for (int64_t x = 0; x < a.dim_v; ++x) part[2 * p.rp + r * p.ldo + x] = sc.o[r * p.ldo + x];
        }
      });
  if (splits == 1) return;
  parallel_for(p.items, 1, [&](int64_t i0, int64_t i1) {
    for (int64_t item = i0; item < i1; ++item) {
      const Tile t = tile_of(a, p, item);
      const float* part0 = partials.data() + item * splits * part_stride;
      for (int64_t r = 0; r < t.nr; ++r) {
        float* y = const_cast<float*>(row_ptr(a.out, t.b, t.h0 + r / t.nq, t.i0 + r % t.nq));
        merge_partials(splits, part0 + r, part0 + p.rp + r, part_stride,
                       part0 + 2 * p.rp + r * p.ldo, part_stride, a.dim_v, y);
      }
    }
  });
}

// The same problem for the split-KV decode kernel: keys [0, Lk) at positions 0..Lk-1 in
// Lk slots (no wrap), queries at Lk - Lq + i.
void forward_decode(const AttentionArgs& a) {
  DecodeArgs d{};
  d.batch = a.batch;
  d.heads_q = a.heads_q;
  d.heads_kv = a.heads_kv;
  d.len_q = a.len_q;
  d.dim = a.dim;
  d.dim_v = a.dim_v;
  d.q = a.q;
  d.out = a.out;
  d.k = a.k;
  d.v = a.v;
  d.slots = a.len_k;
  d.length = a.len_k;
  d.first_key = 0;
  d.rule = key_rule(a);
  d.mask_kind = a.mask_kind;
  d.mask = a.mask;
  for (int i = 0; i < 4; ++i) d.mask_stride[i] = a.mask_stride[i];
  d.rel = a.rel;
  d.scale = a.scale;
  decode_attention(d);
}

// Entry point: the path is chosen here from the shapes (kDecodeMaxTiles).
void forward(const AttentionArgs& a) {
  if (a.batch == 0 || a.heads_q == 0 || a.len_q == 0 || a.dim_v == 0) return;
  const Plan p = make_plan(a);
  const bool few_long_tiles = p.items < kDecodeMaxTiles && a.len_k >= kDecodeMinKeys;
  if (a.len_q == 1 || (few_long_tiles && p.group * a.len_q <= kDecodeMaxRows))
    forward_decode(a);
  else
    forward_tiled(a, p, few_long_tiles ? split_chunks(p.items, a.len_k) : 1);
}

// ------------------------------------------------------------------ materialised weights
// One query row at a time: s_j = scale (q . k_j) (saturated, + relative-position bias, + mask),
// masked keys -inf, then a softmax of the row (max, exp, compensated sum: core/reduce.h). For
// return_weights only.
void weights_rows(const AttentionArgs& a, float* w) {
  const int64_t rows = a.batch * a.heads_q * a.len_q, lk = a.len_k, d = a.dim;
  if (rows == 0 || lk == 0) return;
  const int64_t group = a.heads_q / a.heads_kv;
  const int64_t grain = ceil_div(kGrainMultiplyAdds, lk * (d + 1));
  parallel_for(rows, grain, [&](int64_t r0, int64_t r1) {
    for (int64_t row = r0; row < r1; ++row) {
      const int64_t i = row % a.len_q, h = (row / a.len_q) % a.heads_q;
      const int64_t b = row / (a.len_q * a.heads_q);
      const float* q = row_ptr(a.q, b, h, i);
      const float* kb = row_ptr(a.k, b, h / group, 0);
      float* y = w + row * lk;
      int64_t lo, hi;
      key_range(a, i, lo, hi);
      const int64_t moff = a.mask_kind == AttentionMask::none ? 0 : mask_offset(a, b, h, i);
      const bool rel = a.rel.h_table != nullptr;
      const float* rh = rel ? a.rel.h_table + rel_offset(a.rel.h_stride, b, h, i) : nullptr;
      const float* rw = rel ? a.rel.w_table + rel_offset(a.rel.w_stride, b, h, i) : nullptr;
      for (int64_t j = 0, gh = 0, gw = 0; j < lk; ++j) {  // key j at grid (gh, gw) when rel
        const int64_t jh = gh, jw = gw;
        if (rel && ++gw == a.rel.kw) {
          gw = 0;
          ++gh;
        }
        if (j < lo || j >= hi) {
          y[j] = ninf();
          continue;
        }
        const float* kr = kb + j * a.k.stride_l;
        Vec acc = Vec::zero();
        for_each_vec(d, [&](int64_t x, int cnt) {
          acc = fmadd(load_n(q + x, cnt), load_n(kr + x, cnt), acc);
        });
        float s = saturate_score(hsum(acc) * a.scale);
        if (rel) s = add_bias(s, rh[jh * a.rel.h_stride[3]] + rw[jw * a.rel.w_stride[3]]);
        if (a.mask_kind == AttentionMask::boolean) {
          if (!static_cast<const unsigned char*>(a.mask)[moff + j * a.mask_stride[3]]) s = ninf();
        } else if (a.mask_kind == AttentionMask::additive) {
          s = add_bias(s, static_cast<const float*>(a.mask)[moff + j * a.mask_stride[3]]);
        }
        y[j] = s;
      }
      const float mx = row_max(y, lk);
      const float m_use = mx == ninf() ? 0.0f : mx;  // all masked: exp(-inf) = 0 everywhere
      const Vec vm = Vec::broadcast(m_use);
      const float sum = blocked_sum(lk, [&](int64_t j, int cnt) {
        const Vec e = exp(load_n(y + j, cnt, ninf()) - vm);
        store_n(y + j, e, cnt);
        return e;
      });
      const Vec inv = Vec::broadcast(sum == 0.0f ? 0.0f : 1.0f / sum);
      for_each_vec(lk, [&](int64_t j, int cnt) { store_n(y + j, load_n(y + j, cnt) * inv, cnt); });
    }
  });
}

}  // namespace

void register_kernels(AttentionKernels& t, Tag) {
  t.forward = forward;
  t.weights = weights_rows;
}

}  // namespace FASTATTN_ISA_NAMESPACE
}  // namespace fastattn

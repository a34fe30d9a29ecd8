// Register-blocked micro-kernels for one attention tile, over Vec (every ISA path).
//
// A tile is R query rows (lanes) against Bk keys. Scores are kept TRANSPOSED, S^T[c][r] (key c,
// query row r), so that:
//   - S^T = K Q^T needs no packing of K: a key row K[c][:] is contiguous in memory and is
//     broadcast one element at a time against a vector of query rows of Q^T[d][:] (Q^T is packed
//     once per tile and reused against every key block); each dot product is then scaled and
//     saturated as it leaves the registers (scaled_scores);
//   - the softmax over keys is a reduction across rows of S^T, i.e. lane-wise vector max / exp /
//     sum with no horizontal operations;
//   - O += P V broadcasts P[r][c] = P^T[c][r] (consecutive floats of one S^T row) against the
//     contiguous value row V[c][:], again without packing.
// Both kernels hold an MR x (NV * Vec::size) accumulator block in registers: MR = 6, NV = 2 is
// the classic 12-accumulator AVX2 shape (12 + 2 operands + 1 broadcast of 16 ymm registers);
// AVX-512 runs the same shape on 32-lane panels.
#pragma once

#include <cstdint>

#include "core/util.h"
#include "core/vec_math.h"
#include "kernels/attention/decode.h"

namespace fastattn {
namespace FASTATTN_ISA_NAMESPACE {
namespace attention_tiles {

constexpr int kMR = 6;  // accumulator rows of both micro-kernels

// Decode streams K and V from memory once; the micro-kernels read 8 key rows (or 16 value
// rows) at a time, a few bytes per row per step, which the hardware prefetchers do not run far
// enough ahead of. These ask for the rows this many rows ahead of the current ones.
constexpr int64_t kPrefetchKeysAhead = 16;
constexpr int64_t kPrefetchValuesAhead = 32;

// Hints rows [r0, r1) of a row-major array (stride ld, `len` floats each) into the cache,
// clipped to the `avail` rows that exist; a prefetch never faults, and none is issued past avail.
inline void prefetch_rows(const float* p, int64_t ld, int64_t r0, int64_t r1, int64_t avail,
                          int64_t len) {
  if (r1 > avail) r1 = avail;
  for (int64_t i = r0; i < r1; ++i)
    prefetch_elems(p + i * ld, len);
}

// scale * dot, saturated to [-FLT_MAX, FLT_MAX]. The scale multiplies the finished dot product,
// not q: q * scale can overflow where scale (q . k) does not (|q| = 4, scale = 1e38). A score
// beyond float32 becomes the largest float instead of inf, whose maximum would make the
// softmax's exp(s - m) = exp(inf - inf) NaN. NaN stays NaN: max / min return their second
// operand when either is NaN (core/vec.h). Once per score, outside the loop over d.
inline Vec scaled_scores(Vec dot, Vec scale) {
  const Vec big = Vec::broadcast(kMaxScore), minus_big = Vec::broadcast(-kMaxScore);
  return min(big, max(minus_big, dot * scale));
}

// A per-key bias added to the scores as they leave the registers (the relative-position bias,
// attention.cpp's rel_bias): key i's bias for lane j is h[i][j] + w[i][j], where h[i] and
// w[i] point at rp-lane rows (the packed table slots of the key's grid row and column):
//     st = min(FLT_MAX, scaled_scores(dot) + (h + w))
// (add_bias, decode.h: the same bits as a float mask entry holding the float32 sum h + w).
struct ScoreBias {
  const float* const* h;  // per key of the block; null: no bias
  const float* const* w;
};

// st[i * rp + j] = scaled_scores(sum_x k[i * ldk + x] * qt[x * rp + j]) (+ bias) for i < MR,
// j < NV * W.
//   k:  MR key rows (stride ldk), d features each;  qt: Q^T panel (row stride rp);
//   st: S^T panel (row stride rp); with kBias, bias.h / bias.w for these MR keys and lane0 the
//   panel's first lane.
template <int MR, int NV, bool kBias = false>
inline void qk_block(const float* k, int64_t ldk, const float* qt, int64_t rp, int64_t d,
                     float scale, float* st, ScoreBias bias = {nullptr, nullptr},
                     int64_t lane0 = 0) {
  constexpr int W = Vec::size;
  Vec acc[MR][NV];
  for (int i = 0; i < MR; ++i)
    for (int j = 0; j < NV; ++j) acc[i][j] = Vec::zero();
  for (int64_t x = 0; x < d; ++x) {
    Vec q[NV];
    for (int j = 0; j < NV; ++j) q[j] = Vec::load(qt + x * rp + j * W);
    for (int i = 0; i < MR; ++i) {
      const Vec kb = Vec::broadcast(k[i * ldk + x]);
      for (int j = 0; j < NV; ++j) acc[i][j] = fmadd(kb, q[j], acc[i][j]);
    }
  }
  const Vec vs = Vec::broadcast(scale);
  for (int i = 0; i < MR; ++i)
    for (int j = 0; j < NV; ++j) {
      Vec sc = scaled_scores(acc[i][j], vs);
      if constexpr (kBias) {
        const int64_t lane = lane0 + j * W;
        sc = min(Vec::broadcast(kMaxScore),
                 sc + (Vec::load(bias.h[i] + lane) + Vec::load(bias.w[i] + lane)));
      }
      sc.store(st + i * rp + j * W);
    }
}

// Keys [begin, end) of a block of nk that rows [r0, r1) may attend, from their relative
// bounds lo/hi (null: all nk keys). Keys outside are masked by softmax_block, so the
// micro-kernels skip them: on the causal diagonal and along a window's band this skips the
// masked triangle of each row panel.
inline void panel_keys(const float* lo, const float* hi, int64_t r0, int64_t r1, int64_t nk,
                       int64_t& begin, int64_t& end) {
  begin = 0;
  end = nk;
  if (!lo) return;
  float l = static_cast<float>(nk), h = 0.0f;
  for (int64_t r = r0; r < r1; ++r) {
    if (lo[r] < l) l = lo[r];
    if (hi[r] > h) h = hi[r];
  }
  begin = l > 0.0f ? static_cast<int64_t>(l) : 0;
  end = h < static_cast<float>(nk) ? static_cast<int64_t>(h) : nk;
  if (end < begin) end = begin;
}

// qk_block<n, NV> for a runtime n in [1, MR] (the last key rows of a block).
template <int NV, int MR, bool kBias>
inline void qk_rows(int n, const float* k, int64_t ldk, const float* qt, int64_t rp, int64_t d,
                    float scale, float* st, ScoreBias bias, int64_t lane0) {
  if constexpr (MR >= 1) {
    if (n == MR) qk_block<MR, NV, kBias>(k, ldk, qt, rp, d, scale, st, bias, lane0);
    else qk_rows<NV, MR - 1, kBias>(n, k, ldk, qt, rp, d, scale, st, bias, lane0);
  }
}

// S^T (nk x rp) = scaled_scores(K (nk x d) Q^T (d x rp)); rp a multiple of NV * W. With bounds (lo, hi per
// row, nr real rows), a panel's keys outside its rows' union of ranges are left unwritten.
// Narrow tiles (decode: NV = 1) take 8 key rows at a time: each accumulator receives one FMA
// per step of d, so 8 independent chains are needed to cover the FMA latency (4 cycles x 2
// pipes); 6 x 2 chains do the same for NV = 2. (12 rows ran no faster: their 12 row pointers
// spill.)
// avail (decode, else 0): key rows that exist from k on, for prefetching ahead.
// bias.h non-null: each score gets its key's bias (ScoreBias) as it is stored.
template <int NV, bool kBias>
inline void qk_tile_impl(const float* k, int64_t ldk, const float* qt, int64_t rp, int64_t d,
                         float scale, int64_t nk, float* st, const float* lo, const float* hi,
                         int64_t nr, int64_t avail, ScoreBias bias) {
  constexpr int P = NV * Vec::size;
  constexpr int MR = NV == 1 ? 8 : kMR;
  const auto at = [&](int64_t c) {  // the bias pointers of keys c..
    return kBias ? ScoreBias{bias.h + c, bias.w + c} : bias;
  };
  for (int64_t j = 0; j < rp && j < nr; j += P) {  // Q^T panel (d x P) stays in L1 across keys
    int64_t c, c_end;
    panel_keys(lo, hi, j, j + P < nr ? j + P : nr, nk, c, c_end);
    for (; c + MR <= c_end; c += MR) {
      if (avail > 0)
        prefetch_rows(k, ldk, c + kPrefetchKeysAhead, c + kPrefetchKeysAhead + MR, avail, d);
      qk_block<MR, NV, kBias>(k + c * ldk, ldk, qt + j, rp, d, scale, st + c * rp + j, at(c), j);
    }
    if (c < c_end)
      qk_rows<NV, MR - 1, kBias>(static_cast<int>(c_end - c), k + c * ldk, ldk, qt + j, rp, d,
                                 scale, st + c * rp + j, at(c), j);
  }
}

template <int NV>
inline void qk_tile(const float* k, int64_t ldk, const float* qt, int64_t rp, int64_t d,
                    float scale, int64_t nk, float* st, const float* lo, const float* hi,
                    int64_t nr, int64_t avail = 0, ScoreBias bias = {nullptr, nullptr}) {
  if (bias.h)
    qk_tile_impl<NV, true>(k, ldk, qt, rp, d, scale, nk, st, lo, hi, nr, avail, bias);
  else
    qk_tile_impl<NV, false>(k, ldk, qt, rp, d, scale, nk, st, lo, hi, nr, avail, bias);
}

// Column counts of the NV vectors of a panel of `ncols` (<= NV * W) columns.
template <int NV>
inline void panel_counts(int ncols, int (&cnt)[NV]) {
  for (int j = 0; j < NV; ++j) {
    const int c = ncols - j * Vec::size;
    cnt[j] = c < 0 ? 0 : (c > Vec::size ? Vec::size : c);
  }
}

// o[i][:] = o[i][:] * alpha[i] + sum_c pt[c * rp + i] * v[c * ldv + :]   (i < MR, ncols columns)
// Full panels (ncols == NV * W) use plain loads; the Dv tail uses masked ones (never reading past
// the end of a value row).
template <int MR, int NV, bool kFull>
inline void pv_block(const float* pt, int64_t rp, const float* v, int64_t ldv, int64_t nk,
                     float* o, int64_t ldo, const float* alpha, int ncols) {
  constexpr int W = Vec::size;
  int cnt[NV];
  panel_counts<NV>(ncols, cnt);
  Vec acc[MR][NV];
  for (int i = 0; i < MR; ++i) {
    const Vec a = Vec::broadcast(alpha[i]);
    for (int j = 0; j < NV; ++j)
      acc[i][j] = (kFull ? Vec::load(o + i * ldo + j * W) : load_n(o + i * ldo + j * W, cnt[j])) * a;
  }
  for (int64_t c = 0; c < nk; ++c) {
    Vec x[NV];
    for (int j = 0; j < NV; ++j)
      x[j] = kFull ? Vec::load(v + c * ldv + j * W) : Vec::load_partial(v + c * ldv + j * W, cnt[j]);
    for (int i = 0; i < MR; ++i) {
      const Vec p = Vec::broadcast(pt[c * rp + i]);
      for (int j = 0; j < NV; ++j) acc[i][j] = fmadd(p, x[j], acc[i][j]);
    }
  }
  for (int i = 0; i < MR; ++i)
    for (int j = 0; j < NV; ++j) {
      if (kFull) acc[i][j].store(o + i * ldo + j * W);
      else acc[i][j].store_partial(o + i * ldo + j * W, cnt[j]);
    }
}

// Value columns per pass of pv_tile: a 128-key x 32-column slice of V is 16 KiB, which stays
// in L1 (with the P^T lines of one row panel, 8 KiB) while every row panel of the tile uses it.
constexpr int64_t kPvChunk = 32;

template <int MR>
inline void pv_rows(const float* pt, int64_t rp, const float* v, int64_t ldv, int64_t nk,
                    float* o, int64_t ldo, const float* alpha, int64_t ncols) {
  constexpr int P = 2 * Vec::size;
  int64_t j = 0;
  for (; j + P <= ncols; j += P)
    pv_block<MR, 2, true>(pt, rp, v + j, ldv, nk, o + j, ldo, alpha, P);
  if (j < ncols)
    pv_block<MR, 2, false>(pt, rp, v + j, ldv, nk, o + j, ldo, alpha, static_cast<int>(ncols - j));
}

// Decode (one row panel): keys per pass over the value rows. V has no reuse to keep in L1,
// so it is streamed row by row: 16 whole rows per pass (o is re-loaded once per pass).
constexpr int64_t kDecodeKeys = 16;

template <int MR>
inline void pv_rows_streaming(const float* pt, int64_t rp, const float* v, int64_t ldv,
                              int64_t nk, float* o, int64_t ldo, const float* alpha, int64_t dv,
                              int64_t avail) {
  float ones[kMR];
  for (int i = 0; i < kMR; ++i) ones[i] = 1.0f;
  for (int64_t c = 0; c == 0 || c < nk; c += kDecodeKeys) {  // alpha applies once (c == 0)
    const int64_t n = nk - c < kDecodeKeys ? nk - c : kDecodeKeys;
    prefetch_rows(v, ldv, c + kPrefetchValuesAhead, c + kPrefetchValuesAhead + kDecodeKeys,
                  avail, dv);
    pv_rows<MR>(pt + c * rp, rp, v + c * ldv, ldv, n > 0 ? n : 0, o, ldo, c == 0 ? alpha : ones,
                dv);
  }
}

// O (nr x dv, row stride ldo) = diag(alpha) O + P V, with P given as P^T (nk x rp). With
// bounds (lo, hi), a row panel visits only the keys its rows may attend (P = 0 elsewhere).
// avail (decode, else 0): value rows that exist from v on, for prefetching ahead.
inline void pv_tile(const float* pt, int64_t rp, const float* v, int64_t ldv, int64_t nk,
                    float* o, int64_t ldo, const float* alpha, int64_t nr, int64_t dv,
                    const float* lo, const float* hi, int64_t avail = 0) {
  if (nr <= kMR) {
    int64_t c0, c1;
    panel_keys(lo, hi, 0, nr, nk, c0, c1);
    const float* p = pt + c0 * rp;
    const float* vc = v + c0 * ldv;
    const int64_t ahead = avail - c0;
    switch (nr) {
      case 6: pv_rows_streaming<6>(p, rp, vc, ldv, c1 - c0, o, ldo, alpha, dv, ahead); break;
      case 5: pv_rows_streaming<5>(p, rp, vc, ldv, c1 - c0, o, ldo, alpha, dv, ahead); break;
      case 4: pv_rows_streaming<4>(p, rp, vc, ldv, c1 - c0, o, ldo, alpha, dv, ahead); break;
      case 3: pv_rows_streaming<3>(p, rp, vc, ldv, c1 - c0, o, ldo, alpha, dv, ahead); break;
      case 2: pv_rows_streaming<2>(p, rp, vc, ldv, c1 - c0, o, ldo, alpha, dv, ahead); break;
      default: pv_rows_streaming<1>(p, rp, vc, ldv, c1 - c0, o, ldo, alpha, dv, ahead); break;
    }
    return;
  }
  const int64_t chunk = kPvChunk;
  for (int64_t j0 = 0; j0 < dv; j0 += chunk) {
    const int64_t nc = dv - j0 < chunk ? dv - j0 : chunk;
    for (int64_t r = 0; r < nr; r += kMR) {
      const int64_t mr = nr - r < kMR ? nr - r : kMR;
      int64_t c0, c1;
      panel_keys(lo, hi, r, r + mr, nk, c0, c1);
      const float* p = pt + c0 * rp + r;
      const float* vj = v + c0 * ldv + j0;
      float* orow = o + r * ldo + j0;
      const int64_t n = c1 - c0;
      switch (mr) {
        case 6: pv_rows<6>(p, rp, vj, ldv, n, orow, ldo, alpha + r, nc); break;
        case 5: pv_rows<5>(p, rp, vj, ldv, n, orow, ldo, alpha + r, nc); break;
        case 4: pv_rows<4>(p, rp, vj, ldv, n, orow, ldo, alpha + r, nc); break;
        case 3: pv_rows<3>(p, rp, vj, ldv, n, orow, ldo, alpha + r, nc); break;
        case 2: pv_rows<2>(p, rp, vj, ldv, n, orow, ldo, alpha + r, nc); break;
        default: pv_rows<1>(p, rp, vj, ldv, n, orow, ldo, alpha + r, nc); break;
      }
    }
  }
}

}  // namespace attention_tiles
}  // namespace FASTATTN_ISA_NAMESPACE
}  // namespace fastattn

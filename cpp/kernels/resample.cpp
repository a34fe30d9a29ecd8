// Separable resampling kernel (contract in resample.h): a vertical pass that reduces whole rows
// (vectorised along W, contiguous loads) and a horizontal pass that gathers along a row (the
// column taps are arbitrary indices: each tap's values for V outputs are gathered by scalar
// loads, then reduced as one vector with that tap's V contiguous weights; rows narrower than
// a vector run a scalar loop).
//
// Order. A work item is one plane and a block of kRowBlock output rows. Two orders compute it:
//   vertical first:   per output row, t[0, W) = rows reduced, then out row = columns of t;
//                     cost rows * (ky W / V + OW kx)
//   horizontal first: the R input rows the block touches are reduced along columns into a
//                     stage (R x OW), then per output row the stage rows are reduced;
//                     cost R OW kx + rows ky OW / V
// (V = Vec::size). Upsampling (R << rows) favours horizontal first: the gather runs on R rows
// instead of OH; pooling and downsampling favour vertical first. The choice is made from the
// shapes and tables only (never the thread count), so each output's operations are fixed.
//
// Numerics. sum: each pass is a dot product of k terms in float32, first term w0 x0 (so a
// single tap of weight 1 copies -0.0 and NaN exactly), then acc + w x, fused on the AVX2 and
// AVX-512 paths (unfused on baseline and in the scalar loop): |err| <= (ky + kx + 3) 2^-24
// sum |wy wx x| with the weights' own rounding (docs/resample.md). A tap of weight 0 still
// multiplies its pixel, so a NaN or inf there gives NaN, as torch's kernels do. max: exact;
// NaN if any tap is NaN (torch's rule), -inf for a window with no tap.
//
// Threads: items (plane, row block) in static chunks; each item is computed by one thread with
// its own scratch, so results are bit-identical for any thread count.
#include "kernels/resample.h"

#include <cfloat>
#include <cstdint>
#include <limits>

#include "core/memory.h"
#include "core/parallel.h"
#include "core/util.h"

namespace fastattn {
namespace FASTATTN_ISA_NAMESPACE {
namespace {

// Output rows per work item: enough that the horizontal-first stage is reused by many rows
// (4x upsampling: 32 rows read ~10 input rows), few enough that a 1024-row plane still gives
// 32 items to share between threads.
constexpr int64_t kRowBlock = 32;
// Largest horizontal-first stage (floats) per thread: 4 MiB, within L2 + L3 reach; beyond it
// the vertical-first order (W floats of scratch) is used whatever the cost model says.
constexpr int64_t kMaxStageFloats = int64_t{1} << 20;

// NaN-propagating max. max(x, m) returns m when either is NaN (the x86 rule, which Vec
// keeps on every path), so a NaN already in m stays; a NaN in x enters through
// min(FLT_MAX, |x|) * -0, which is NaN for NaN and -0 otherwise (|x| capped so that inf * -0
// is not NaN), and adding -0 leaves every value, -0 included, unchanged.
inline Vec max_keep_nan(Vec m, Vec x, Vec big, Vec neg_zero) {
  return fmadd(min(big, abs(x)), neg_zero, max(x, m));
}

// out[0, n) = the reduction over the valid taps a < taps (index[a * step] >= 0) of the rows
// src + (index[a * step] - base) * ld, weighted by weight[a * step] for sum (src holds rows
// base, base + 1, ...). No valid tap: 0 (sum) or -inf (max).
void vertical(const float* src, int64_t base, int64_t ld, const int64_t* index,
              const float* weight, int64_t step, int64_t taps, int64_t n, float* out,
              ResampleReduce reduce) {
  int64_t first = 0;
  while (first < taps && index[first * step] < 0) ++first;
  if (first == taps) {
    const float fill = reduce == ResampleReduce::max ? -std::numeric_limits<float>::infinity()
                                                     : 0.0f;
    for (int64_t i = 0; i < n; ++i) out[i] = fill;
    return;
  }
  const float* row0 = src + (index[first * step] - base) * ld;
  if (reduce == ResampleReduce::max) {
    const Vec big = Vec::broadcast(FLT_MAX), neg_zero = Vec::broadcast(-0.0f);
    for_each_vec(n, [&](int64_t i, int cnt) {
      Vec m = load_n(row0 + i, cnt);
      for (int64_t a = first + 1; a < taps; ++a) {
        const int64_t r = index[a * step];
        if (r >= 0) m = max_keep_nan(m, load_n(src + (r - base) * ld + i, cnt), big, neg_zero);
      }
      store_n(out + i, m, cnt);
    });
    return;
  }
  const Vec w0 = Vec::broadcast(weight[first * step]);
  for_each_vec(n, [&](int64_t i, int cnt) {
    Vec acc = w0 * load_n(row0 + i, cnt);
    for (int64_t a = first + 1; a < taps; ++a) {
      const int64_t r = index[a * step];
      if (r >= 0)
        acc = fmadd(Vec::broadcast(weight[a * step]), load_n(src + (r - base) * ld + i, cnt), acc);
    }
    store_n(out + i, acc, cnt);
  });
}

// Whether index[0, n) counts up by one from index[0] >= 0.
bool consecutive(const int64_t* index, int64_t n) {
  for (int64_t b = 0; b < n; ++b)
    if (index[b] != index[0] + b || index[b] < 0) return false;
  return true;
}

// out[j] for j < OW: the reduction of row[index[b * OW + j]] over the column taps b < taps,
// V outputs at a time: each tap's V values are gathered by scalar loads into a small buffer,
// then reduced as vectors (the weights of one tap are contiguous in the tap-major table). No
// branch per tap: row[-1] must hold the reduction's neutral value (0 for sum, -inf for max),
// which a -1 tap reads (its weight is 0, or irrelevant for max).
// Rows narrower than a vector take a scalar loop instead: its buffer round trip (scalar
// stores, one vector load: a store-forwarding stall) would cost more than the taps; a single
// output whose taps are consecutive pixels (`dot`: global average pooling) is a vector dot
// product.
void horizontal(const float* row, const int64_t* index, const float* weight, int64_t taps,
                int64_t OW, float* out, ResampleReduce reduce, bool dot) {
  constexpr int V = Vec::size;
  if (dot) {
    const float* x = row + index[0];
    Vec acc = Vec::zero();
    for_each_vec(taps, [&](int64_t b, int cnt) {
      acc = fmadd(load_n(weight + b, cnt), load_n(x + b, cnt), acc);
    });
    out[0] = hsum(acc);
    return;
  }
  if (OW < V) {
    for (int64_t j = 0; j < OW; ++j) {
      float acc = row[index[j]];
      if (reduce == ResampleReduce::max) {
        for (int64_t b = 1; b < taps; ++b) {
          const float v = row[index[b * OW + j]];
          if (v > acc || v != v) acc = v;  // torch's rule: the first NaN wins and stays
        }
      } else {
        acc *= weight[j];
        for (int64_t b = 1; b < taps; ++b) acc = acc + weight[b * OW + j] * row[index[b * OW + j]];
      }
      out[j] = acc;
    }
    return;
  }
  alignas(64) float g[V];
  const Vec big = Vec::broadcast(FLT_MAX), neg_zero = Vec::broadcast(-0.0f);
  for_each_vec(OW, [&](int64_t j, int cnt) {
    const auto gather = [&](int64_t b) {
      const int64_t* ix = index + b * OW + j;
      for (int l = 0; l < cnt; ++l) g[l] = row[ix[l]];
      return load_n(g, cnt);
    };
    Vec acc = gather(0);
    if (reduce == ResampleReduce::max) {
      for (int64_t b = 1; b < taps; ++b) acc = max_keep_nan(acc, gather(b), big, neg_zero);
    } else {
      acc = acc * load_n(weight + j, cnt);
      for (int64_t b = 1; b < taps; ++b)
        acc = fmadd(load_n(weight + b * OW + j, cnt), gather(b), acc);
    }
    store_n(out + j, acc, cnt);
  });
}

void resample(const float* x, float* out, int64_t planes, int64_t H, int64_t W, int64_t OH,
              int64_t OW, const int64_t* row_index, const float* row_weight, int64_t ky,
              const int64_t* col_index, const float* col_weight, int64_t kx,
              ResampleReduce reduce) {
  if (planes == 0 || OH == 0 || OW == 0) return;
  const float neutral = reduce == ResampleReduce::max ? -std::numeric_limits<float>::infinity()
                                                      : 0.0f;
  if (kx == 0) {  // no column taps at all: every output is the neutral value
    for (int64_t i = 0; i < planes * OH * OW; ++i) out[i] = neutral;
    return;
  }
  // Whether some column tap is -1: then the rows the horizontal pass reads are copied behind
  // a neutral element (row[-1]); otherwise the input rows are read in place.
  bool col_gaps = false;
  for (int64_t t = 0; t < kx * OW; ++t) col_gaps |= col_index[t] < 0;
  // (not for one tap: the scalar loop's w x keeps a -0.0 that 0 + w x would not)
  const bool dot = OW == 1 && kx > 1 && reduce == ResampleReduce::sum &&
                   consecutive(col_index, kx);
  const int64_t blocks = ceil_div(OH, kRowBlock);
  const int64_t V = Vec::size;
  const int64_t per_item = kRowBlock * (OW * (kx + ky) + W);
  parallel_for(planes * blocks, grain_items(per_item, kGrainMultiplyAdds),
               [&](int64_t item0, int64_t item1) {
    // scratch: [neutral, one row of W] then the stage (R x OW) when horizontal first
    AlignedFloats scratch;
    // the block's plan (input rows [lo, hi], pass order), kept while the block repeats (always
    // with one block per plane: small planes, global pooling)
    int64_t block = -1, lo = 0, hi = -1, R = 0;
    bool horizontal_first = false;
    for (int64_t item = item0; item < item1; ++item) {
      const int64_t p = item / blocks, i0 = (item % blocks) * kRowBlock;
      const int64_t i1 = i0 + kRowBlock < OH ? i0 + kRowBlock : OH;
      const float* xp = x + p * H * W;
      float* op = out + p * OH * OW;
      if (item % blocks != block) {
        block = item % blocks;
        lo = H, hi = -1;
        for (int64_t a = 0; a < ky; ++a)
          for (int64_t i = i0; i < i1; ++i) {
            const int64_t r = row_index[a * OH + i];
            if (r < 0) continue;
            lo = r < lo ? r : lo;
            hi = r > hi ? r : hi;
          }
        R = hi >= lo ? hi - lo + 1 : 0;
        const int64_t rows = i1 - i0;
        const int64_t cost_vertical_first = rows * (ky * ceil_div(W, V) + OW * kx);
        const int64_t cost_horizontal_first = R * OW * kx + rows * ky * ceil_div(OW, V);
        horizontal_first =
            R > 0 && R * OW <= kMaxStageFloats && cost_horizontal_first < cost_vertical_first;
      }
      scratch.reserve(static_cast<std::size_t>(1 + W + (horizontal_first ? R * OW : 0)));
      float* row = scratch.data() + 1;  // row[-1] = neutral
      row[-1] = neutral;
      const float* rw = row_weight;  // tap a of output row i at [a * OH + i]
      if (horizontal_first) {
        float* stage = row + W;
        for (int64_t r = lo; r <= hi; ++r) {
          const float* src = xp + r * W;
          if (col_gaps) {
            for (int64_t c = 0; c < W; ++c) row[c] = src[c];
            src = row;
          }
          horizontal(src, col_index, col_weight, kx, OW, stage + (r - lo) * OW, reduce, dot);
        }
        for (int64_t i = i0; i < i1; ++i)  // the stage's row r - lo holds input row r
          vertical(stage, lo, OW, row_index + i, rw ? rw + i : nullptr, OH, ky, OW,
                   op + i * OW, reduce);
      } else {
        for (int64_t i = i0; i < i1; ++i) {
          vertical(xp, 0, W, row_index + i, rw ? rw + i : nullptr, OH, ky, W, row, reduce);
          horizontal(row, col_index, col_weight, kx, OW, op + i * OW, reduce, dot);
        }
      }
    }
  });
}

}  // namespace

void register_kernels(ResampleKernels& t, Tag) { t.resample = resample; }

}  // namespace FASTATTN_ISA_NAMESPACE
}  // namespace fastattn

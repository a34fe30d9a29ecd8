// Separable resampling kernel (contract in resample.h): a vertical pass that reduces whole rows
// (vectorised along W, contiguous loads) and a horizontal pass that gathers along a row
// (scalar: the column taps are arbitrary indices).
//
// Order. A work item is one plane and a block of kRowBlock output rows. Two orders compute it:
//   vertical first:   per output row, t[0, W) = rows reduced, then out row = columns of t;
//                     cost rows * (ky W / V + OW kx)
//   horizontal first: the R input rows the block touches are reduced along columns into a
//                     stage (R x OW), then per output row the stage rows are reduced;
//                     cost R OW kx + rows ky OW / V
// (V = Vec::size). Upsampling (R << rows) favours horizontal first: the scalar gather runs on
// R rows instead of OH; pooling and downsampling favour vertical first. The choice is made from
// the shapes and tables only (never the thread count), so each output's operations are fixed.
//
// Numerics. sum: each pass is a dot product of <= k terms in float32, first term w0 x0 (so a
// single tap of weight 1 copies -0.0 and NaN exactly), then w x + acc, fused on the AVX2 and
// AVX-512 paths (vertical pass) and unfused in the scalar pass: |err| <= (ky + kx) 2^-24
// sum |wy wx x| (docs/resample.md). max: exact; NaN if any tap is NaN (torch's rule), -inf for
// a window with no tap.
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

// out[0, n) = the reduction over the valid taps a (index[a] >= 0) of rows
// src + (index[a] - base) * ld, weighted by weight[a] for sum (src holds rows base, base + 1,
// ...). No valid tap: 0 (sum) or -inf (max).
void vertical(const float* src, int64_t base, int64_t ld, const int64_t* index,
              const float* weight, int64_t taps, int64_t n, float* out, ResampleReduce reduce) {
  int64_t first = 0;
  while (first < taps && index[first] < 0) ++first;
  if (first == taps) {
    const float fill = reduce == ResampleReduce::max ? -std::numeric_limits<float>::infinity()
                                                     : 0.0f;
    for (int64_t i = 0; i < n; ++i) out[i] = fill;
    return;
  }
  const float* row0 = src + (index[first] - base) * ld;
  if (reduce == ResampleReduce::max) {
    const Vec big = Vec::broadcast(FLT_MAX), neg_zero = Vec::broadcast(-0.0f);
    for_each_vec(n, [&](int64_t i, int cnt) {
      Vec m = load_n(row0 + i, cnt);
      for (int64_t a = first + 1; a < taps; ++a)
        if (index[a] >= 0)
          m = max_keep_nan(m, load_n(src + (index[a] - base) * ld + i, cnt), big, neg_zero);
      store_n(out + i, m, cnt);
    });
    return;
  }
  const Vec w0 = Vec::broadcast(weight[first]);
  for_each_vec(n, [&](int64_t i, int cnt) {
    Vec acc = w0 * load_n(row0 + i, cnt);
    for (int64_t a = first + 1; a < taps; ++a)
      if (index[a] >= 0)
        acc = fmadd(Vec::broadcast(weight[a]), load_n(src + (index[a] - base) * ld + i, cnt), acc);
    store_n(out + i, acc, cnt);
  });
}

// out[j] for j < OW: the reduction of row[index[j][b]] over the valid column taps b.
void horizontal(const float* row, const int64_t* index, const float* weight, int64_t taps,
                int64_t OW, float* out, ResampleReduce reduce) {
  if (reduce == ResampleReduce::max) {
    for (int64_t j = 0; j < OW; ++j) {
      const int64_t* ix = index + j * taps;
      float m = -std::numeric_limits<float>::infinity();
      for (int64_t b = 0; b < taps; ++b) {
        if (ix[b] < 0) continue;
        const float v = row[ix[b]];
        if (v > m || v != v) m = v;  // torch's rule: the first NaN wins and stays
      }
      out[j] = m;
    }
    return;
  }
  for (int64_t j = 0; j < OW; ++j) {
    const int64_t* ix = index + j * taps;
    const float* w = weight + j * taps;
    float acc = 0.0f;
    bool any = false;
    for (int64_t b = 0; b < taps; ++b) {
      if (ix[b] < 0) continue;
      const float p = w[b] * row[ix[b]];
      acc = any ? acc + p : p;
      any = true;
    }
    out[j] = acc;
  }
}

void resample(const float* x, float* out, int64_t planes, int64_t H, int64_t W, int64_t OH,
              int64_t OW, const int64_t* row_index, const float* row_weight, int64_t ky,
              const int64_t* col_index, const float* col_weight, int64_t kx,
              ResampleReduce reduce) {
  if (planes == 0 || OH == 0 || OW == 0) return;
  const int64_t blocks = ceil_div(OH, kRowBlock);
  const int64_t V = Vec::size;
  const int64_t per_item = kRowBlock * (OW * (kx + ky) + W);
  parallel_for(planes * blocks, grain_items(per_item, kGrainMultiplyAdds),
               [&](int64_t item0, int64_t item1) {
    AlignedFloats scratch;
    for (int64_t item = item0; item < item1; ++item) {
      const int64_t p = item / blocks, i0 = (item % blocks) * kRowBlock;
      const int64_t i1 = i0 + kRowBlock < OH ? i0 + kRowBlock : OH;
      const float* xp = x + p * H * W;
      float* op = out + p * OH * OW;
      // the input rows this block reads: [lo, hi]
      int64_t lo = H, hi = -1;
      for (int64_t t = i0 * ky; t < i1 * ky; ++t) {
        const int64_t r = row_index[t];
        if (r < 0) continue;
        lo = r < lo ? r : lo;
        hi = r > hi ? r : hi;
      }
      const int64_t R = hi >= lo ? hi - lo + 1 : 0, rows = i1 - i0;
      const int64_t cost_vertical_first = rows * (ky * ceil_div(W, V) + OW * kx);
      const int64_t cost_horizontal_first = R * OW * kx + rows * ky * ceil_div(OW, V);
      if (R > 0 && R * OW <= kMaxStageFloats && cost_horizontal_first < cost_vertical_first) {
        scratch.reserve(static_cast<std::size_t>(R * OW));
        float* stage = scratch.data();
        for (int64_t r = lo; r <= hi; ++r)
          horizontal(xp + r * W, col_index, col_weight, kx, OW, stage + (r - lo) * OW, reduce);
        for (int64_t i = i0; i < i1; ++i)  // the stage's row r - lo holds input row r
          vertical(stage, lo, OW, row_index + i * ky, row_weight ? row_weight + i * ky : nullptr,
                   ky, OW, op + i * OW, reduce);
      } else {
        scratch.reserve(static_cast<std::size_t>(W > 0 ? W : 1));
        float* t = scratch.data();
        for (int64_t i = i0; i < i1; ++i) {
          vertical(xp, 0, W, row_index + i * ky, row_weight ? row_weight + i * ky : nullptr, ky, W,
                   t, reduce);
          horizontal(t, col_index, col_weight, kx, OW, op + i * OW, reduce);
        }
      }
    }
  });
}

}  // namespace

void register_kernels(ResampleKernels& t, Tag) { t.resample = resample; }

}  // namespace FASTATTN_ISA_NAMESPACE
}  // namespace fastattn

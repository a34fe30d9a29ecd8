// RoPE kernel: a streaming, element-wise rotation. Each row (b, h, l) reads its D floats and
// one table row, and writes D floats: bandwidth bound, so the only goals are full-width
// vectors, no gathers and no extra passes.
//   half style: the two halves are two contiguous runs, y1 = x1 c - x2 s, y2 = x2 c + x1 s.
//   interleaved: one run, y = x * (c, c) + swap_pairs(x) * (-s, s), with the duplicated /
//     signed table the wrapper builds, so no lane shuffle crosses a pair.
// Numerics: two products and one fused add per output: |y - y_exact| <= ~2 ulp of
// |x1 c| + |x2 s| beyond the tables' own float32 rounding (tests/test_rope.py).
// Ordinary stores, also out of place: rows are short runs (a head of 128 floats is two 256-byte
// halves at NumPy's 16-byte alignment), and non-temporal stores of such runs measured slower
// than the read-for-ownership they save (4096 x 32 x 128: 7.0 ms plain, 10.2 ms streamed with
// whole lines only, 13.3 ms streamed naively).
// Threading: rows split statically over threads; each row is independent, so the bits never
// depend on the thread count. In place is safe: every output vector is computed from inputs
// loaded before it is stored, and no later vector reads what an earlier one wrote.
#include "kernels/rope.h"

#include <cstdint>

#include "core/parallel.h"
#include "core/row_writer.h"
#include "core/util.h"
#include "core/vec_math.h"

namespace fastattn {
namespace FASTATTN_ISA_NAMESPACE {
namespace {

// y[0, half) = x1 c - x2 s and y[half, rot) = x2 c + x1 s (x1 = x[0, half), x2 = x[half, rot)),
// both halves from one load of x1 and x2: safe in place.
void rotate_half_row(const float* x, float* y, const float* c, const float* s, int64_t half) {
  for_each_vec(half, [&](int64_t i, int cnt) {
    const Vec vc = load_n(c + i, cnt), vs = load_n(s + i, cnt);
    const Vec x1 = load_n(x + i, cnt), x2 = load_n(x + half + i, cnt);
    store_n(y + i, fnmadd(x2, vs, x1 * vc), cnt);         // x1 c - x2 s
    store_n(y + half + i, fmadd(x1, vs, x2 * vc), cnt);   // x2 c + x1 s
  });
}

// y = x * (c, c) + swap_pairs(x) * (-s, s) over [0, rot). Every chunk write_row asks for starts
// at an even index and has an even length (rot and W are even; no streaming, so no head
// split), so no pair is ever split between two chunks.
void rotate_interleaved_row(const float* x, float* y, const float* c, const float* s,
                            int64_t rot) {
  write_row(y, rot, false, [&](int64_t i, int cnt) {
    const Vec xv = load_n(x + i, cnt);
    return fmadd(swap_pairs(xv), load_n(s + i, cnt), xv * load_n(c + i, cnt));
  });
}

void rope(const float* x, float* y, int64_t batch, int64_t heads, int64_t L, int64_t D,
          const float* cos, const float* sin, int64_t table_bstride, int64_t rot,
          bool interleaved) {
  const int64_t rows = batch * heads * L;
  if (rows == 0 || D == 0) return;
  const int64_t width = interleaved ? rot : rot / 2;
  const int64_t grain = grain_items(D, kGrainFloats);
  parallel_for(rows, grain, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const int64_t l = r % L, b = r / (heads * L);
      const int64_t t = (b * table_bstride + l) * width;
      const float* xr = x + r * D;
      float* yr = y + r * D;
      if (interleaved) rotate_interleaved_row(xr, yr, cos + t, sin + t, rot);
      else rotate_half_row(xr, yr, cos + t, sin + t, rot / 2);
      if (yr != xr && rot < D)
        write_row(yr + rot, D - rot, false,
                  [&](int64_t i, int cnt) { return load_n(xr + rot + i, cnt); });
    }
  });
}

}  // namespace

void register_kernels(RopeKernels& t, Tag) { t.rope = rope; }

}  // namespace FASTATTN_ISA_NAMESPACE
}  // namespace fastattn

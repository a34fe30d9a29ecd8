// Low-precision-weight matmul (lowp.h): two paths, chosen by M.
//
// Small M (decode, M <= kGemvMaxM): the weight is streamed once (bandwidth bound: the point of the
// smaller formats), each 32-element step of a row converted in registers (lowp_simd.h,
// core/vec16.h) and multiplied by the float32 activations, R rows of W^T side by side (R
// independent FMA chains per activation row, R streams for the prefetcher). A is copied once into a
// zero-padded contiguous buffer (M x Kp, read from L1 by every row). Each output element is one FMA
// chain over k in steps of Vec::size lanes, then hsum: the same operations wherever its row of W^T
// falls, so splitting N across threads never changes a bit. More than 4 rows of A go 4 at a time,
// each group of W's rows reused from L1 for all of them (the panel path takes over above
// kGemvMaxM). q8 / q4 stream the same way but multiply int8 by int8 (llama.cpp's way, measured
// faster than converting to float: docs/weight_formats.md): A's rows are quantised per block of 32,
// each block's dot is exact in int32 and scaled by d_w d_a into float32 lanes. A row of A with inf
// / NaN sends the call to the float form, which propagates them.
//
// Large M (prefill): columns of W are converted, a block of kBlockColumns at a time,
// into float32 panels in exactly the layout of the float32 pre-packed matmul (matmul.h:
// packed[p * K * NR + k * NR + j % NR]), which then runs through the MatmulKernels table's
// gemm_packed (the float32 micro-kernel, its blocking and threading), with the epilogue's bias
// and residual offset to the block's columns. Converting costs O(K N) against the product's
// O(M K N): 0-6% at M = 128 on one thread (docs/weight_formats.md, measured). The conversion of a
// block is split by panel across the threads; the product is gemm_packed's, bit-identical
// for any thread count; each element of C is exactly what float32 matmul gives for the
// dequantised weight.
#include "kernels/matmul/lowp.h"

#include <cmath>
#include <cstring>

#include "core/memory.h"
#include "core/parallel.h"
#include "core/threading.h"
#include "core/util.h"
#include "kernels/matmul/internal.h"
#include "kernels/matmul/lowp_simd.h"

namespace fastattn {
namespace FASTATTN_ISA_NAMESPACE {

namespace {

constexpr int W = Vec::size;
constexpr int G = kLowpGroups;        // Vecs per 32-element step
constexpr int64_t kStep = kLowpBlock;  // elements per step (one q8 / q4 block)

// Largest M of the streaming path. Measured (1 thread, 2048 x 2048, ms a call, streaming /
// panels): bf16 M = 8 0.83 / 1.88, 16 1.48 / 2.27, 24 2.24 / ~2.3; q8 16 1.86 / 2.33, 24
// 2.80 / ~2.3: the streaming path's cost grows with M (4 rows of A a pass over W's rows in L1),
// the panels' conversion is paid once; they cross between 16 and 24.
constexpr int64_t kGemvMaxM = 16;
// Columns converted per gemm_packed call (the block of panels): each call re-reads all of A
// (M x K floats, 1 MiB at 128 x 2048) and restarts the thread team, so fewer, wider blocks
// are cheaper. Measured (1 thread, float32 pre-packed 128 x 2048 @ 2048 x 2048 cut into
// column blocks, CPU ms): blocks of 256 / 512 / 1024 columns 9.11 / 7.25 / 7.79, one call
// 7.27. The converted block (K x 512 floats: 4 MiB at K = 2048) is per-thread scratch.
constexpr int64_t kBlockColumns = 512;
// Weight bytes a thread must get on the streaming path before another thread is woken:
// streaming 128 KiB takes ~5 us at one core's ~20 GB/s, about the fork/join cost.
constexpr int64_t kGemvGrainBytes = int64_t{1} << 17;

// Per-thread scratch of this file (matmul_scratch's slots belong to gemm.cpp, whose
// gemm_packed this file calls on the same thread): 0 = A padded, 1 = converted panels.
float* lowp_scratch(int slot, std::size_t count) {
  static thread_local AlignedFloats buffers[2];
  buffers[slot].reserve(count);
  return buffers[slot].data();
}

// This ISA path's float32 matmul kernels (the table the bindings see for this path).
const MatmulKernels& float_kernels() {
  static const MatmulKernels table = [] {
    MatmulKernels t;
    register_kernels(t, Tag{});
    return t;
  }();
  return table;
}

// One format: bytes per row of the stored weight, and step s (elements [32 s, 32 s + 32)) of
// a row converted to G Vecs of float32. `full`: the step lies inside K (always for q8 / q4,
// whose rows are padded to Kp); otherwise only its first K - 32 s elements exist.
template <WeightFormat F>
struct Format;

// bfloat16 / float16: E is core/vec16.h's element type (BFloat16 or Float16).
template <class E>
struct Format16 {
  static int64_t row_bytes(int64_t K) { return 2 * K; }
  static void step(const uint8_t* row, const uint16_t*, int64_t s, int64_t K, Vec* out) {
    const uint16_t* p = reinterpret_cast<const uint16_t*>(row) + s * kStep;
    uint16_t tail[kStep];
    if ((s + 1) * kStep > K) {  // the row's last, partial step: zeros past K
      std::memset(tail, 0, sizeof tail);
      std::memcpy(tail, p, static_cast<std::size_t>(K - s * kStep) * 2);
      p = tail;
    }
    for (int g = 0; g < G; ++g) out[g] = E::load(p + g * W);
  }
};
template <>
struct Format<WeightFormat::bfloat16> : Format16<BFloat16> {};
template <>
struct Format<WeightFormat::float16> : Format16<Float16> {};

// q8 / q4: w = q * d, exact in float32 (8-bit q times an 11-bit d).
template <>
struct Format<WeightFormat::q8> {
  static int64_t row_bytes(int64_t K) { return round_up(K, kStep); }
  static void step(const uint8_t* row, const uint16_t* scales, int64_t s, int64_t, Vec* out) {
    const int8_t* p = reinterpret_cast<const int8_t*>(row) + s * kStep;
    const Vec d = Vec::broadcast(f16_to_f32_fast(scales[s]));
    for (int g = 0; g < G; ++g) out[g] = from_i8(p + g * W) * d;
  }
};

template <>
struct Format<WeightFormat::q4> {
  static int64_t row_bytes(int64_t K) { return round_up(K, kStep) / 2; }
  static void step(const uint8_t* row, const uint16_t* scales, int64_t s, int64_t, Vec* out) {
    const uint8_t* p = row + s * (kStep / 2);
    const Vec d = Vec::broadcast(f16_to_f32_fast(scales[s]));
    for (int g = 0; g < G; ++g) out[g] = from_q4(p, g) * d;
  }
};

template <WeightFormat F>
const uint8_t* row_ptr(const LowpMatrix& w, int64_t n) {
  return static_cast<const uint8_t*>(w.weight) + n * Format<F>::row_bytes(w.K);
}
inline const uint16_t* scale_row(const LowpMatrix& w, int64_t n) {
  return w.scales ? w.scales + n * (round_up(w.K, kStep) / kStep) : nullptr;
}

// ------------------------------------------------------------------ streaming (small M)

// C[m, n0 + r] = sum_k A[m, k] W[k, n0 + r] for MB rows of A (abuf, row stride lda, zero
// past K) and R rows of W^T from n0: MB x R accumulators, one chain each.
template <WeightFormat F, int MB, int R>
void gemv_rows(const LowpMatrix& w, int64_t n0, const float* abuf, int64_t lda, float* c,
               int64_t ldc) {
  const int64_t K = w.K, steps = ceil_div(K, kStep);
  const uint8_t* rows[R];
  const uint16_t* srows[R];
  for (int r = 0; r < R; ++r) rows[r] = row_ptr<F>(w, n0 + r), srows[r] = scale_row(w, n0 + r);
  Vec acc[MB][R];
  for (int m = 0; m < MB; ++m)
    for (int r = 0; r < R; ++r) acc[m][r] = Vec::zero();
  // Each row of W^T is a short stream (q8, K = 2048: 32 cache lines), too short for the
  // hardware prefetcher to ramp up on: the same step of the rows R ahead (the next call's,
  // contiguous after these) is hinted now, once per 64-byte line, ~R rows of bytes ahead.
  const int64_t step_bytes = Format<F>::row_bytes(kStep), ahead = R * Format<F>::row_bytes(K);
  for (int64_t s = 0; s < steps; ++s) {
    if ((s * step_bytes) % 64 == 0)
      for (int r = 0; r < R; ++r) prefetch(rows[r] + ahead + s * step_bytes);
    Vec wv[R][G];
    for (int r = 0; r < R; ++r) Format<F>::step(rows[r], srows[r], s, K, wv[r]);
    for (int m = 0; m < MB; ++m)
      for (int g = 0; g < G; ++g) {
        const Vec av = Vec::load(abuf + m * lda + s * kStep + g * W);
        for (int r = 0; r < R; ++r) acc[m][r] = fmadd(av, wv[r][g], acc[m][r]);
      }
  }
  for (int m = 0; m < MB; ++m)
    for (int r = 0; r < R; ++r) c[m * ldc + n0 + r] = hsum(acc[m][r]);
}

// Rows of W^T side by side: 4 (AVX-512's 32 registers hold 4 x 4 accumulators; AVX2's 16 and
// baseline's hold 4 x 2 with the weights and activations beside them).
template <int MB>
constexpr int rows_side_by_side() { return W == 16 || MB <= 2 ? 4 : 2; }

template <WeightFormat F, int MB>
void gemv_block(const LowpMatrix& w, int64_t n0, int64_t n1, const float* abuf, int64_t lda,
                float* c, int64_t ldc) {
  constexpr int R = rows_side_by_side<MB>();
  int64_t n = n0;
  for (; n + R <= n1; n += R) gemv_rows<F, MB, R>(w, n, abuf, lda, c, ldc);
  for (; n < n1; ++n) gemv_rows<F, MB, 1>(w, n, abuf, lda, c, ldc);
}

template <WeightFormat F>
void gemv(int64_t M, StridedMatrix a, const LowpMatrix& w, float* c, int64_t ldc,
          const MatmulEpilogue& ep) {
  const int64_t K = w.K, N = w.N, lda = round_up(K, kStep);
  float* abuf = lowp_scratch(0, static_cast<std::size_t>(M * lda));
  for (int64_t m = 0; m < M; ++m) {
    float* dst = abuf + m * lda;
    for (int64_t k = 0; k < K; ++k) dst[k] = a.data[m * a.rs + k * a.cs];
    for (int64_t k = K; k < lda; ++k) dst[k] = 0.0f;
  }
  // Work items: groups of 4 rows of W^T (one gemv_rows call at R = 4).
  constexpr int64_t kRowsPerItem = 4;
  const int64_t items = ceil_div(N, kRowsPerItem);
  const int64_t item_bytes = kRowsPerItem * Format<F>::row_bytes(K) * ceil_div(M, 4);
  parallel_for(items, ceil_div(kGemvGrainBytes, item_bytes), [&](int64_t i0, int64_t i1) {
    const int64_t n0 = i0 * kRowsPerItem, n1 = i1 * kRowsPerItem < N ? i1 * kRowsPerItem : N;
    // per item (4 rows of W^T, in L1 after the first chunk of A's rows) all of A's rows, 4 at
    // a time: the weight is read from memory once for any M
    for (int64_t j0 = n0; j0 < n1; j0 += kRowsPerItem) {
      const int64_t j1 = j0 + kRowsPerItem < n1 ? j0 + kRowsPerItem : n1;
      for (int64_t m0 = 0; m0 < M; m0 += 4) {
        const float* am = abuf + m0 * lda;
        float* cm = c + m0 * ldc;
        switch (M - m0 < 4 ? M - m0 : 4) {
          case 1: gemv_block<F, 1>(w, j0, j1, am, lda, cm, ldc); break;
          case 2: gemv_block<F, 2>(w, j0, j1, am, lda, cm, ldc); break;
          case 3: gemv_block<F, 3>(w, j0, j1, am, lda, cm, ldc); break;
          default: gemv_block<F, 4>(w, j0, j1, am, lda, cm, ldc); break;
        }
      }
    }
    epilogue_rows(c, ldc, M, 0, n0, n1, ep);
  });
}

// ------------------------------------------------------------------ int8 x int8 (q8, q4)

// A's rows quantised per block of 32 (llama.cpp's Q8_0 for activations): d_a = max|a| / 127,
// q_a = round(a / d_a) in [-127, 127] (|a| / d_a <= 127 (1 + 2^-23): never past 127.5), so
// |a - q_a d_a| <= d_a / 2 (1 + 2^-20) per element. Returns false when a has a non-finite
// value (the float path then propagates it as float32 matmul would).
bool quantize_rows(int64_t M, StridedMatrix a, int64_t K, int64_t Kp, int8_t* qa, float* da) {
  const int64_t lda = Kp;
  const int64_t nb = Kp / kStep;
  for (int64_t m = 0; m < M; ++m) {
    for (int64_t b = 0; b < nb; ++b) {
      float x[kStep], amax = 0.0f;
      for (int64_t i = 0; i < kStep; ++i) {
        const int64_t k = b * kStep + i;
        x[i] = k < K ? a.data[m * a.rs + k * a.cs] : 0.0f;
        const float ax = x[i] < 0 ? -x[i] : x[i];
        if (!(ax <= 3.0e38f)) return false;  // inf or NaN (3e38 / 127 keeps 1 / d finite)
        amax = ax > amax ? ax : amax;
      }
      const float d = amax / 127.0f, id = d > 0 ? 1.0f / d : 0.0f;
      da[m * nb + b] = d;
      int8_t* q = qa + m * lda + b * kStep;
      for (int64_t i = 0; i < kStep; ++i) q[i] = static_cast<int8_t>(std::nearbyint(x[i] * id));
    }
  }
  return true;
}

// C[m, n0 + r] = sum over blocks of d_w d_a (q_w . q_a) for MB rows of quantised A (row
// stride lda bytes, zero past Kp) and R rows of W^T: MB x R accumulators, one chain each (the
// same prefetch as gemv_rows). q4 multiplies its unsigned nibbles u = q + 8 as they are and
// subtracts 8 sum(q_a) per lane in integers (lowp_simd.h): each block's dot stays exact.
template <WeightFormat F, int MB, int R>
void gemv_rows_i8(const LowpMatrix& w, int64_t n0, const int8_t* qa, const float* da,
                  int64_t lda, float* c, int64_t ldc) {
  const int64_t nb = round_up(w.K, kStep) / kStep;
  const uint8_t* rows[R];
  const uint16_t* srows[R];
  for (int r = 0; r < R; ++r) rows[r] = row_ptr<F>(w, n0 + r), srows[r] = scale_row(w, n0 + r);
  BlockAcc acc[MB][R];
  for (int m = 0; m < MB; ++m)
    for (int r = 0; r < R; ++r) acc[m][r] = block_acc_zero();
  const int64_t step_bytes = Format<F>::row_bytes(kStep), ahead = R * Format<F>::row_bytes(w.K);
  for (int64_t b = 0; b < nb; ++b) {
    if ((b * step_bytes) % 64 == 0)
      for (int r = 0; r < R; ++r) prefetch(rows[r] + ahead + b * step_bytes);
    WBlock wb[R];
    float dw[R];
    for (int r = 0; r < R; ++r) {
      if constexpr (F == WeightFormat::q8)
        wb[r] = load_q8_block(reinterpret_cast<const int8_t*>(rows[r]) + b * kStep);
      else
        wb[r] = load_q4u_block(rows[r] + b * (kStep / 2));
      dw[r] = f16_to_f32_fast(srows[r][b]);
    }
    for (int m = 0; m < MB; ++m) {
      const int8_t* am = qa + m * lda + b * kStep;
      const float dam = da[m * nb + b];
      if constexpr (F == WeightFormat::q8) {
        for (int r = 0; r < R; ++r) block_acc_add(acc[m][r], wb[r], am, dw[r] * dam);
      } else {
        const Q4Offset off = q4_offset(am);
        for (int r = 0; r < R; ++r) block_acc_add_q4(acc[m][r], wb[r], am, dw[r] * dam, off);
      }
    }
  }
  for (int m = 0; m < MB; ++m)
    for (int r = 0; r < R; ++r) c[m * ldc + n0 + r] = block_acc_sum(acc[m][r]);
}

template <WeightFormat F, int MB>
void gemv_block_i8(const LowpMatrix& w, int64_t n0, int64_t n1, const int8_t* qa,
                   const float* da, int64_t lda, float* c, int64_t ldc) {
  constexpr int R = rows_side_by_side<MB>();
  int64_t n = n0;
  for (; n + R <= n1; n += R) gemv_rows_i8<F, MB, R>(w, n, qa, da, lda, c, ldc);
  for (; n < n1; ++n) gemv_rows_i8<F, MB, 1>(w, n, qa, da, lda, c, ldc);
}

// Per-thread int8 scratch (A's quants), beside lowp_scratch's floats.
int8_t* lowp_bytes(std::size_t count) {
  static thread_local AlignedFloats buffer;
  buffer.reserve((count + 3) / 4);
  return reinterpret_cast<int8_t*>(buffer.data());
}

// The int8 streaming path; false (nothing done) when A has a non-finite value.
template <WeightFormat F>
bool gemv_i8(int64_t M, StridedMatrix a, const LowpMatrix& w, float* c, int64_t ldc,
             const MatmulEpilogue& ep) {
  const int64_t K = w.K, N = w.N, Kp = round_up(K, kStep), nb = Kp / kStep;
  const int64_t lda = Kp;
  int8_t* qa = lowp_bytes(static_cast<std::size_t>(M * lda));
  float* da = lowp_scratch(0, static_cast<std::size_t>(M * nb));
  if (!quantize_rows(M, a, K, Kp, qa, da)) return false;
  constexpr int64_t kRowsPerItem = 4;
  const int64_t items = ceil_div(N, kRowsPerItem);
  const int64_t item_bytes = kRowsPerItem * Format<F>::row_bytes(K) * ceil_div(M, 4);
  parallel_for(items, ceil_div(kGemvGrainBytes, item_bytes), [&](int64_t i0, int64_t i1) {
    const int64_t n0 = i0 * kRowsPerItem, n1 = i1 * kRowsPerItem < N ? i1 * kRowsPerItem : N;
    for (int64_t j0 = n0; j0 < n1; j0 += kRowsPerItem) {  // as in gemv: W read once
      const int64_t j1 = j0 + kRowsPerItem < n1 ? j0 + kRowsPerItem : n1;
      for (int64_t m0 = 0; m0 < M; m0 += 4) {
        const int8_t* qm = qa + m0 * lda;
        const float* dm = da + m0 * nb;
        float* cm = c + m0 * ldc;
        switch (M - m0 < 4 ? M - m0 : 4) {
          case 1: gemv_block_i8<F, 1>(w, j0, j1, qm, dm, lda, cm, ldc); break;
          case 2: gemv_block_i8<F, 2>(w, j0, j1, qm, dm, lda, cm, ldc); break;
          case 3: gemv_block_i8<F, 3>(w, j0, j1, qm, dm, lda, cm, ldc); break;
          default: gemv_block_i8<F, 4>(w, j0, j1, qm, dm, lda, cm, ldc); break;
        }
      }
    }
    epilogue_rows(c, ldc, M, 0, n0, n1, ep);
  });
  return true;
}

// ------------------------------------------------------------------ panels (large M)

// Columns [n0, n0 + cols) of W (rows of W^T), cols <= NR, into one float32 panel:
// dst[k * NR + j] = W[k, n0 + j], zero for j >= cols.
template <WeightFormat F>
void convert_panel(const LowpMatrix& w, int64_t n0, int cols, int NR, float* dst) {
  constexpr int kMaxNR = 64;  // NR is 2 Vecs: 8 (baseline), 16 (AVX2), 32 (AVX-512)
  const int64_t K = w.K, steps = ceil_div(K, kStep);
  for (int64_t s = 0; s < steps; ++s) {
    const int64_t kc = K - s * kStep < kStep ? K - s * kStep : kStep;
    float* d = dst + s * kStep * NR;
    if (kc == kStep) {  // 8 rows at a time, converted and transposed in registers
      for (int j0 = 0; j0 < NR; j0 += 8) {
        Vec v[8][G];
        for (int j = 0; j < 8; ++j) {
          if (j0 + j < cols)
            Format<F>::step(row_ptr<F>(w, n0 + j0 + j), scale_row(w, n0 + j0 + j), s, K, v[j]);
          else
            for (int g = 0; g < G; ++g) v[j][g] = Vec::zero();
        }
        store_step_transposed(v, d + j0, NR);
      }
    } else {  // K's last, partial step: only its kc rows exist in the panel
      alignas(64) float tmp[kMaxNR][kStep];
      for (int j = 0; j < NR; ++j) {
        Vec v[G];
        if (j < cols) Format<F>::step(row_ptr<F>(w, n0 + j), scale_row(w, n0 + j), s, K, v);
        for (int g = 0; g < G; ++g) (j < cols ? v[g] : Vec::zero()).store(&tmp[j][g * W]);
      }
      for (int64_t k = 0; k < kc; ++k)
        for (int j = 0; j < NR; ++j) d[k * NR + j] = tmp[j][k];
    }
  }
}

template <WeightFormat F>
void gemm_panels(int64_t M, StridedMatrix a, const LowpMatrix& w, float* c, int64_t ldc,
                 const MatmulEpilogue& ep) {
  const MatmulKernels& fk = float_kernels();
  const int NR = fk.panel_width();
  const int64_t K = w.K, N = w.N, block = round_up(N < kBlockColumns ? N : kBlockColumns, NR);
  float* panels = lowp_scratch(1, static_cast<std::size_t>(block * K));
  for (int64_t j0 = 0; j0 < N; j0 += block) {
    const int64_t cols = N - j0 < block ? N - j0 : block, np = ceil_div(cols, NR);
    parallel_for(np, 1, [&](int64_t p0, int64_t p1) {
      for (int64_t p = p0; p < p1; ++p) {
        const int64_t j = p * NR;
        convert_panel<F>(w, j0 + j, static_cast<int>(cols - j < NR ? cols - j : NR), NR,
                         panels + p * K * NR);
      }
    });
    MatmulEpilogue e = ep;
    if (e.bias) e.bias += j0;
    if (e.residual) e.residual += j0;
    fk.gemm_packed(M, cols, K, a, panels, c + j0, ldc, e);
  }
}

template <WeightFormat F>
void matmul_format(int64_t M, StridedMatrix a, const LowpMatrix& w, float* c, int64_t ldc,
                   const MatmulEpilogue& ep) {
  if (M > kGemvMaxM) return gemm_panels<F>(M, a, w, c, ldc, ep);
  if constexpr (F == WeightFormat::q8 || F == WeightFormat::q4)
    if (gemv_i8<F>(M, a, w, c, ldc, ep)) return;
  gemv<F>(M, a, w, c, ldc, ep);
}

void lowp_matmul(int64_t M, StridedMatrix a, const LowpMatrix& w, float* c, int64_t ldc,
                 const MatmulEpilogue& ep) {
  if (M <= 0 || w.N <= 0) return;
  if (w.K <= 0) {  // an empty sum: C = epilogue(0)
    for (int64_t i = 0; i < M; ++i)
      for (int64_t j = 0; j < w.N; ++j) c[i * ldc + j] = 0.0f;
    epilogue_rows(c, ldc, M, 0, 0, w.N, ep);
    return;
  }
  switch (w.format) {
    case WeightFormat::bfloat16: return matmul_format<WeightFormat::bfloat16>(M, a, w, c, ldc, ep);
    case WeightFormat::float16: return matmul_format<WeightFormat::float16>(M, a, w, c, ldc, ep);
    case WeightFormat::q8: return matmul_format<WeightFormat::q8>(M, a, w, c, ldc, ep);
    case WeightFormat::q4: return matmul_format<WeightFormat::q4>(M, a, w, c, ldc, ep);
  }
}

int64_t gemv_max_m() { return kGemvMaxM; }

}  // namespace

void register_kernels(LowpKernels& t, Tag) {
  t.matmul = lowp_matmul;
  t.gemv_max_m = gemv_max_m;
}

}  // namespace FASTATTN_ISA_NAMESPACE
}  // namespace fastattn

// Blocked sgemm (Goto / BLIS): C = epilogue(A @ B) for strided float32 views.
//
// Loops, outermost first (sizes in microkernel.h):
//   jc over N by NC   - B block of NC columns
//   pc over K by KC   - pack B[pc:pc+KC, jc:jc+NC] into NR-column panels (shared by all threads)
//   ic over M by MC   - pack A[ic:ic+MC, pc:pc+KC] into MR-row slivers (per thread, in L2)
//   jr over the panels, ir over the slivers: the MR x NR micro-kernel, C tile in registers.
// C carries the partial sum between K blocks (each block's tile sum is added to it); the
// epilogue (bias, activation, residual) is applied only in the last K block, while the tile is
// in registers.
//
// Threading: one OpenMP team for the whole product. Per (jc, pc) the team packs B's panels
// (split by panel), meets at the barrier, then shares out the output macro-tiles: (ic block,
// group of panels) items, at least ~4 per thread, handed out dynamically (a thread slowed by
// another process on its core takes fewer). Who computes an item never changes its bits. K is never split and the KC blocks are fixed, so each
// C element gets the same operations in every partition: bits independent of the thread count.
//
// M <= 4 goes to the GEMV path (gemv.cpp); products with one K block (K <= KC) and up to 512^2
// outputs to gemm_direct (no packing of A, no barrier; exact-row tail tiles); products below
// 2^20 multiply-adds run on the calling thread without entering an OpenMP region; a batch of
// small products runs one product per thread. A pre-packed B (PackedMatrix) with M > 4
// takes gemm_prepacked below: no B to pack, so no barrier per K block.
#include <atomic>
#include <cstring>

#include "core/memory.h"
#include "core/parallel.h"
#include "core/util.h"
#include "kernels/matmul/internal.h"
#include "kernels/matmul/microkernel.h"

namespace fastattn {
namespace FASTATTN_ISA_NAMESPACE {

float* matmul_scratch(int slot, std::size_t count) {
  static thread_local AlignedFloats buffers[3];
  buffers[slot].reserve(count);
  return buffers[slot].data();
}

void epilogue_rows(float* c, int64_t ldc, int64_t m, int64_t row0, int64_t j0, int64_t j1,
                   const MatmulEpilogue& ep) {
  if (!ep.bias && !ep.residual && ep.activation == Activation::none) return;
  for (int64_t i = 0; i < m; ++i) {
    const TileEpilogue te = tile_epilogue(ep, row0 + i, j0);
    float* row = c + i * ldc + j0;
    for_each_vec(j1 - j0, [&](int64_t j, int cnt) {
      store_n(row + j, finish(load_n(row + j, cnt), te, 0, static_cast<int>(j), cnt), cnt);
    });
  }
}

namespace {

// Threads for one product of M*N*K multiply-adds: below 2^20 (~100^3, ~25 us on one core)
// waking the team and its barriers cost more than they save (measured, quiet machine, 2 cores:
// 96^3 27 -> 22 us, 128^3 58 -> 47 us with a second thread; 64^3 no gain).
int threads_for_product(int64_t M, int64_t N, int64_t K) {
  // M <= 4 (GEMV) is bound by streaming B (N x K floats) from memory, where one core reaches
  // about half the machine's bandwidth: a second thread pays off from ~256 KiB of B on (the
  // stream then takes longer than the ~10 us fork/join). Decode-time layers (768 x 768 and up)
  // all qualify.
  constexpr int64_t kGemvParallelFloats = int64_t{1} << 16;  // 256 KiB of B
  constexpr double kParallelMultiplyAdds = 1048576.0;         // 2^20
  if (M <= 4) return N * K >= kGemvParallelFloats ? num_threads() : 1;
  const double work = static_cast<double>(M) * static_cast<double>(N) * static_cast<double>(K);
  return work < kParallelMultiplyAdds ? 1 : num_threads();
}

// body() on a team of nt threads (it may contain orphaned `omp for`s), or directly when nt == 1.
template <class F>
void run_team(int nt, const F& body) {
#if defined(_OPENMP)
  if (nt > 1) {
#pragma omp parallel num_threads(nt)
    body();
    return;
  }
#endif
  body();
}

// The blocked product. `prepacked`: B already in panels spanning all K rows (PackedMatrix);
// otherwise B is read through b's strides and packed per (jc, pc) block.
void gemm_blocked(int64_t M, int64_t N, int64_t K, StridedMatrix a, StridedMatrix b,
                  const float* prepacked, float* c, int64_t ldc, const MatmulEpilogue& ep,
                  int nt) {
  constexpr int MR = kMR, NR = kNR;
  const int64_t n_jc = ceil_div(N, kNC);
  const int64_t nc_blk = round_up(ceil_div(N, n_jc), NR);
  // Row blocks: MC-sized, but with several threads at least two per thread (of >= 4 slivers)
  // when M allows, so that each work item packs only its own rows of A. (Split over N alone,
  // every item repacks the whole A block: at 160^3 on 2 threads that was 8 packings of A.)
  int64_t n_ic = ceil_div(M, kMC);
  if (nt > 1) {
    const int64_t by_rows = ceil_div(M, 4 * MR), want = 2 * static_cast<int64_t>(nt);
    const int64_t more = by_rows < want ? by_rows : want;
    if (more > n_ic) n_ic = more;
  }
  const int64_t mc_blk = round_up(ceil_div(M, n_ic), MR);
  n_ic = ceil_div(M, mc_blk);
  // Items per (jc, pc): n_ic row blocks x n_jg panel groups, at least ~4 per thread so the
  // dynamic schedule can even out a thread slowed by other processes (each group repacks its
  // A block: mc x kc floats against mc x kc x (nc / n_jg) multiply-adds, negligible).
  const int64_t n_jg_want = nt > 1 ? ceil_div(4 * nt, n_ic) : 1;
  const int64_t kc_max = K < kKC ? K : kKC;
  float* bbuf = prepacked ? nullptr
                          : matmul_scratch(1, static_cast<std::size_t>(kc_max * nc_blk));

  // The team's body; with one thread called directly (an `omp parallel ... if (false)` still
  // allocates a team: ~0.5 us, measured, a third of a 32^3 product's time), its `omp for`s then
  // orphaned, i.e. serial.
  const auto body = [&] {
    float* abuf = matmul_scratch(0, static_cast<std::size_t>(mc_blk * kc_max));
    for (int64_t jc = 0; jc < N; jc += nc_blk) {
      const int64_t nc = N - jc < nc_blk ? N - jc : nc_blk;
      const int64_t npan = ceil_div(nc, NR);
      const int64_t n_jg = n_jg_want < npan ? n_jg_want : npan;
      for (int64_t pc = 0; pc < K; pc += kKC) {
        const int64_t kc = K - pc < kKC ? K - pc : kKC;
        const float* bpan;
        int64_t pstride;
        if (!prepacked) {
#if defined(_OPENMP)
#pragma omp for schedule(static)
#endif
          for (int64_t p = 0; p < npan; ++p) {
            const int n = static_cast<int>(nc - p * NR < NR ? nc - p * NR : NR);
            pack_b_panel<NR>(kc, n, b.data + pc * b.rs + (jc + p * NR) * b.cs, b.rs, b.cs,
                             bbuf + p * kc * NR);
          }
          bpan = bbuf;
          pstride = kc * NR;
        } else {
          bpan = prepacked + (jc / NR) * K * NR + pc * NR;
          pstride = K * NR;
        }
        const bool accumulate = pc > 0, last = pc + kc == K;
#if defined(_OPENMP)
#pragma omp for schedule(dynamic, 1)
#endif
        for (int64_t item = 0; item < n_ic * n_jg; ++item) {
          const int64_t ic = item / n_jg, jg = item % n_jg;
          const int64_t p0 = npan * jg / n_jg, p1 = npan * (jg + 1) / n_jg;
          if (p0 == p1) continue;
          const int64_t i0 = ic * mc_blk;
          const int64_t mc = M - i0 < mc_blk ? M - i0 : mc_blk;
          pack_a<MR>(mc, kc, a.data + i0 * a.rs + pc * a.cs, a.rs, a.cs, abuf);
          for (int64_t p = p0; p < p1; ++p) {
            const int64_t j = jc + p * NR;
            const int n = static_cast<int>(nc - p * NR < NR ? nc - p * NR : NR);
            for (int64_t ir = 0; ir < mc; ir += MR) {
              const int m = static_cast<int>(mc - ir < MR ? mc - ir : MR);
              const TileEpilogue te = tile_epilogue(ep, i0 + ir, j);
              micro_kernel<MR, kNV>(kc, abuf + ir * kc, bpan + p * pstride,
                                    c + (i0 + ir) * ldc + j, ldc, m, n, accumulate,
                                    last ? &te : nullptr);
            }
          }
        }
      }
    }
  };
  run_team(nt, body);
}

// Rows of the no-packing small path: an R-row tile (R <= MR, any R, no zero-padded rows) of
// NV vectors of columns, A read in place (rows contiguous along k, row stride lda), B from a
// K x NR panel. R is a template argument so each row count gets its own register tile: the
// tail rows of M cost their own FMAs, not a full MR-row tile's on a packed, zero-padded copy.
template <int R, int NV>
inline void direct_rows(int m, int64_t kc, const float* a, int64_t lda, const float* b,
                        int64_t ldb, float* c, int64_t ldc, int n, bool accumulate,
                        const TileEpilogue* te) {
  if constexpr (R > 1) {
    if (m < R) return direct_rows<R - 1, NV>(m, kc, a, lda, b, ldb, c, ldc, n, accumulate, te);
  }
  micro_kernel<R, NV, true>(kc, a, b, c, ldc, R, n, accumulate, te, lda, ldb);
}

// Products with one K block (K <= KC) and at most kDirectMaxOutputs outputs: attention tiles,
// 16..256 squares, a few tokens through a layer, per-head scores; and products of at most
// kDirectBRows rows with B's rows contiguous for any K (a few tokens through a wide layer:
// K blocks of KC as in gemm_blocked, each block's chain from zero added to C in k order, the
// epilogue after the last; 8 x 768 @ 768 x 768 AVX-512: 150 -> 66 us). No packing of A, no shared
// B block and no barrier. A with contiguous rows is read in place, any other layout (a
// transposed view) copied once into contiguous rows (M x K floats). B is packed one
// NR-column panel at a time into the thread's own buffer (K x NR floats, reused by every row
// tile of the work item): read in place, a power-of-two row stride (N = 128: 512 B) maps B's
// K rows onto 8 of L1's 64 sets and every tile would miss (measured 128^3: 79 us in place,
// 60 us packed, docs/matmul.md); packing costs K x NR copies against rows x NR x K
// multiply-adds. Row blocks of at most kDirectBRows rows read full panels of a B with
// contiguous rows in place (7 x 256 @ 256 x 256, AVX-512: 9.0 -> 5.3 us).
// Row tiles are MR rows, the last one its exact row count (direct_rows); a last panel of at
// most one vector of columns runs a one-vector tile (NV = 1: half the FMAs of the AVX-512
// 12 x 32 tile at N = 16).
// Threads: work items are (row block, panel) pairs, handed out dynamically - one row block
// when there are >= 4 panels per thread, otherwise M is cut into enough MR-multiple row blocks
// for ~4 items per thread (7 x 128 @ 128 x 4096: 128 panels; 4096 x 128 @ 128 x 7: one panel,
// 8 row blocks). Each C element is one FMA chain from zero over k in order, then the
// epilogue, whoever computes it: the same operations as gemm_blocked's single K block, hence
// the same bits for any thread count and either path.
constexpr int64_t kDirectMaxOutputs = int64_t{512} * 512;
// Row blocks of at most this many rows read a full B panel with contiguous rows in place: each
// B line is then used by at most two row tiles, so L1 set conflicts (above) cost little, and
// packing (K x NR copies) would be a large part of the work (7 x 128 @ 128 x 4096: 1 copy per
// 7 multiply-adds).
constexpr int64_t kDirectBRows = 2 * kMR;

void gemm_direct(int64_t M, int64_t N, int64_t K, StridedMatrix a, StridedMatrix b, float* c,
                 int64_t ldc, const MatmulEpilogue& ep, int nt) {
  constexpr int MR = kMR, NR = kNR, W = Vec::size;
  const float* ad = a.data;
  int64_t lda = a.rs;
  if (a.cs != 1) {
    float* abuf = matmul_scratch(0, static_cast<std::size_t>(M * K));
    for (int64_t i = 0; i < M; ++i)
      for (int64_t k = 0; k < K; ++k) abuf[i * K + k] = a.data[i * a.rs + k * a.cs];
    ad = abuf;
    lda = K;
  }
  const int64_t npan = ceil_div(N, NR);
  int64_t n_rb = 1;
  if (nt > 1 && npan < 4 * static_cast<int64_t>(nt)) {
    const int64_t want = ceil_div(4 * static_cast<int64_t>(nt), npan), most = ceil_div(M, MR);
    n_rb = want < most ? want : most;
  }
  const int64_t rb = round_up(ceil_div(M, n_rb), MR);
  n_rb = ceil_div(M, rb);
  // item t: row block t / npan, panel t % npan (a thread's consecutive items share A's rows)
  const auto item = [&](int64_t t) {
    const int64_t i0 = t / npan * rb, i1 = i0 + rb < M ? i0 + rb : M;
    const int64_t j = t % npan * NR;
    const int n = static_cast<int>(N - j < NR ? N - j : NR);
    const bool in_place = b.cs == 1 && n == NR && i1 - i0 <= kDirectBRows;
    for (int64_t pc = 0; pc < K; pc += kKC) {
      const int64_t kc = K - pc < kKC ? K - pc : kKC;
      const bool accumulate = pc > 0, last = pc + kc == K;
      const float* bp = b.data + pc * b.rs + j;
      int64_t ldb = b.rs;
      if (!in_place) {
        float* bbuf = matmul_scratch(1, static_cast<std::size_t>(NR * kc));
        pack_b_panel<NR>(kc, n, b.data + pc * b.rs + j * b.cs, b.rs, b.cs, bbuf);
        bp = bbuf;
        ldb = NR;
      }
      for (int64_t i = i0; i < i1; i += MR) {
        const int m = static_cast<int>(i1 - i < MR ? i1 - i : MR);
        const TileEpilogue te = tile_epilogue(ep, i, j);
        const TileEpilogue* tep = last ? &te : nullptr;
        const float* at = ad + i * lda + pc;
        float* ct = c + i * ldc + j;
        if (n <= W) direct_rows<MR, 1>(m, kc, at, lda, bp, ldb, ct, ldc, n, accumulate, tep);
        else direct_rows<MR, kNV>(m, kc, at, lda, bp, ldb, ct, ldc, n, accumulate, tep);
      }
    }
  };
  const int64_t items = n_rb * npan;
  if (nt > 1) {
    parallel_for_each_dynamic(items, item);
  } else {
    for (int64_t t = 0; t < items; ++t) item(t);
  }
}

// K = 0: C = epilogue(0).
void gemm_empty_k(int64_t M, int64_t N, float* c, int64_t ldc, const MatmulEpilogue& ep) {
  for (int64_t i = 0; i < M; ++i) std::memset(c + i * ldc, 0, sizeof(float) * N);
  epilogue_rows(c, ldc, M, 0, 0, N, ep);
}

void gemm_one(int64_t M, int64_t N, int64_t K, StridedMatrix a, StridedMatrix b, float* c,
              int64_t ldc, const MatmulEpilogue& ep, int nt) {
  if (M <= 0 || N <= 0) return;
  if (K <= 0) return gemm_empty_k(M, N, c, ldc, ep);
  // An axis of extent 1 is never stepped along (the bindings give it stride 0): unit stride,
  // so that the layout tests below see a 1-column A or a 1-row / 1-column B as contiguous.
  if (K == 1) a.cs = 1;
  if (N == 1) b.cs = 1;
  if (M <= 4 && gemv_small_m(M, N, K, a, b, c, ldc, ep, nt)) return;
  // (an A without contiguous rows is copied whole by gemm_direct: only while that is small)
  if ((K <= kKC || (M <= kDirectBRows && b.cs == 1)) && M * N <= kDirectMaxOutputs &&
      (a.cs == 1 || M * K <= kDirectMaxOutputs))
    return gemm_direct(M, N, K, a, b, c, ldc, ep, nt);
  gemm_blocked(M, N, K, a, b, nullptr, c, ldc, ep, nt);
}

void gemm(int64_t M, int64_t N, int64_t K, StridedMatrix a, StridedMatrix b, float* c,
          int64_t ldc, const MatmulEpilogue& ep) {
  gemm_one(M, N, K, a, b, c, ldc, ep, threads_for_product(M, N, K));
}

void gemm_batched(int64_t batch, const int64_t* a_off, const int64_t* b_off, const int64_t* c_off,
                  const int64_t* r_off, int64_t M, int64_t N, int64_t K, StridedMatrix a,
                  StridedMatrix b, float* c, int64_t ldc, const MatmulEpilogue& ep) {
  const auto item = [&](int64_t t, int nt) {
    MatmulEpilogue e = ep;
    if (e.residual) e.residual += r_off[t];
    gemm_one(M, N, K, {a.data + a_off[t], a.rs, a.cs}, {b.data + b_off[t], b.rs, b.cs},
             c + c_off[t], ldc, e, nt);
  };
  const int nt = threads_for_product(M, N, K);
  // A product that would not fill the team by itself (up to 4 ic blocks' worth) runs whole on
  // one thread, the batch split across threads; larger ones use the team one after another.
  const double work = static_cast<double>(M) * static_cast<double>(N) * static_cast<double>(K);
  if (batch > 1 && work < 4.0 * kMC * kNC * kKC / 16) {
    parallel_for(batch, 1, [&](int64_t t0, int64_t t1) {
      for (int64_t t = t0; t < t1; ++t) item(t, 1);
    });
  } else {
    for (int64_t t = 0; t < batch; ++t) item(t, nt);
  }
}

int panel_width() { return kNR; }

void pack_b(int64_t K, int64_t N, StridedMatrix b, float* packed) {
  const int64_t npan = ceil_div(N, kNR);
  parallel_for(npan, 16, [&](int64_t p0, int64_t p1) {
    for (int64_t p = p0; p < p1; ++p) {
      const int n = static_cast<int>(N - p * kNR < kNR ? N - p * kNR : kNR);
      pack_b_panel<kNR>(K, n, b.data + p * kNR * b.cs, b.rs, b.cs, packed + p * K * kNR);
    }
  });
}

// M <= 4 against P consecutive pre-packed panels at once:
// C[0:M, j:j+P*NR] = epilogue(A (M x K) @ panels (K x NR each)).
// Bandwidth-bound: what limits it is not arithmetic but how many cache misses are in flight.
// One sequential stream per core gets ~half of what the memory can deliver (the hardware
// prefetcher runs a bounded distance ahead of each stream), so P panels are read side by side
// (P streams), each line also prefetched explicitly, and P x M x NV independent accumulators
// cover the FMA latency. Each output element is still one FMA chain over k in order: the same
// bits for any P, any panel grouping and any thread count.
template <int MR, int P>
inline void gemv_panels(int64_t K, const float* __restrict a, const float* __restrict b,
                        float* c, int64_t ldc, int64_t j0, int64_t N, const MatmulEpilogue& ep) {
  constexpr int W = Vec::size, NV = kNV, NR = kNR;
  constexpr int64_t kAhead = 16;  // k steps (cache lines of a panel) prefetched ahead
  const int64_t stride = K * NR;  // floats between consecutive panels
  Vec acc[P][MR][NV];
  for (int p = 0; p < P; ++p)
    for (int i = 0; i < MR; ++i)
      for (int v = 0; v < NV; ++v) acc[p][i][v] = Vec::zero();
  for (int64_t k = 0; k < K; ++k) {
    Vec ai[MR];
    for (int i = 0; i < MR; ++i) ai[i] = Vec::broadcast(a[k * MR + i]);
#pragma GCC unroll 4
    for (int p = 0; p < P; ++p) {
      const float* bk = b + p * stride + k * NR;
      if (k + kAhead < K) prefetch(bk + kAhead * NR);
      for (int v = 0; v < NV; ++v) {
        const Vec bv = Vec::load(bk + v * W);
        for (int i = 0; i < MR; ++i) acc[p][i][v] = fmadd(ai[i], bv, acc[p][i][v]);
      }
    }
  }
  for (int p = 0; p < P; ++p) {
    const int64_t j = j0 + p * NR;
    const int n = static_cast<int>(N - j < NR ? N - j : NR);
    const TileEpilogue te = tile_epilogue(ep, 0, j);
    for (int i = 0; i < MR; ++i)
      for (int v = 0; v < NV; ++v) {
        const int cnt = n - v * W > W ? W : n - v * W;
        if (cnt <= 0) break;
        store_n(c + i * ldc + j + v * W, finish(acc[p][i][v], te, i, v * W, cnt), cnt);
      }
  }
}

// M <= 4 with pre-packed B: every panel streamed once, the whole K in one pass (A, at most
// 4 x K floats, packed once and kept in L1); parallel over groups of panels.
template <int MR>
void gemm_packed_small_m(int64_t M, int64_t N, int64_t K, StridedMatrix a, const float* packed,
                         float* c, int64_t ldc, const MatmulEpilogue& ep, int nt) {
  constexpr int P = MR == 1 ? 4 : MR == 2 ? 2 : MR == 3 ? 2 : 1;  // P * MR * kNV <= 12
  float* abuf = matmul_scratch(2, static_cast<std::size_t>(MR * K));
  pack_a<MR>(M, K, a.data, a.rs, a.cs, abuf);
  const int64_t npan = ceil_div(N, kNR);
  const int64_t ngroups = ceil_div(npan, P);
  const auto run = [&](int64_t g0, int64_t g1) {
    for (int64_t g = g0; g < g1; ++g) {
      const int64_t p = g * P;
      const float* b = packed + p * K * kNR;
      if (p + P <= npan) gemv_panels<MR, P>(K, abuf, b, c, ldc, p * kNR, N, ep);
      else
        for (int64_t q = p; q < npan; ++q)
          gemv_panels<MR, 1>(K, abuf, packed + q * K * kNR, c, ldc, q * kNR, N, ep);
    }
  };
  if (nt > 1) parallel_for(ngroups, ceil_div(8, P), run);
  else run(0, ngroups);
}

// The micro-kernel as a call of its own, packed A or A read in place (see conv/gemm_driver.h:
// inlined into a large item loop, GCC allocates its accumulators worse).
#if defined(__GNUC__)
#define FASTATTN_MATMUL_NOINLINE __attribute__((noinline))
#else
#define FASTATTN_MATMUL_NOINLINE
#endif
FASTATTN_MATMUL_NOINLINE void packed_tile(int64_t kc, const float* a, const float* b, float* c,
                                          int64_t ldc, int m, int n, bool accumulate,
                                          const TileEpilogue* te) {
  micro_kernel<kMR, kNV>(kc, a, b, c, ldc, m, n, accumulate, te);
}
FASTATTN_MATMUL_NOINLINE void direct_tile(int64_t kc, const float* a, int64_t lda, const float* b,
                                          float* c, int64_t ldc, int n, bool accumulate,
                                          const TileEpilogue* te) {
  micro_kernel<kMR, kNV, true>(kc, a, b, c, ldc, kMR, n, accumulate, te, lda, kNR);
}

// K steps of the pre-packed path's loops: 3 K blocks (768). The sums still run per kKC = 256
// block exactly as in gemm_blocked (a chain from zero per block, the blocks added to C in k
// order), so a PackedMatrix gives the same bits as the unpacked call; only the loops around
// the tiles step by 768: each tile's 3 block calls follow each other while the tile is in L1;
// with the AVX-512 tile the 768 x 32 B panel (96 KiB) streams from L2 and the 12-row A sliver
// (36 KiB) stays in the 48 KiB L1. Measured (quiet machine, 2 threads, the eight ViT-B shapes
// of docs/matmul.md, one block per step): steps 192 / 256 / 384 / 768 / 3072 -> geomean
// 248 / 261 / 262 / 270 / 272 GFLOP/s.
constexpr int64_t kPackedStep = 3 * kKC;

// M > 4 against a pre-packed B (PackedMatrix). Nothing of B to pack, so no barrier per K block:
// work units are (row block, panel) pairs, and a thread takes a run of consecutive units and
// computes its C tiles over the whole K (the tiles stay in L2 between K steps, the epilogue
// follows the last block while the tile is in registers).
//   A: rows contiguous along k (a.cs == 1, every layer's activations) -> full MR-row slivers
//      read in place (micro_kernel's kDirect: the same operations, so the same bits), only a
//      partial last sliver packed; otherwise all of A is packed once, by the team, before the
//      units start (slivers spanning K: sliver s at abuf + s * MR * K, K block pc at + pc * MR).
//      Packing per unit instead re-packs A for every panel group; packing all of A even with
//      unit-stride rows cost 35 us of ~1 ms at 197 x 768 @ 768 x 768 and 2 ms of 29 ms at
//      1576 x 3072 @ 3072 x 768 (measured), reading in place 249-260 against 237-248 GFLOP/s
//      for the first and 273-278 against 259-266 for the second.
//   Threads: guided self-scheduling - a run is (units left) / (2 threads) long, at most 8
//      panels (C tile <= 240 x 256 floats, in L2), shrinking to one unit at the end, so the
//      threads finish within about one unit of each other. (Fixed groups of 1-2 panels, handed
//      out dynamically, left one thread idle for 10% of a 197 x 768 @ 768 x 768 product.)
// K is never split, so who computes a unit never changes its bits.
void gemm_prepacked(int64_t M, int64_t N, int64_t K, StridedMatrix a, const float* packed,
                    float* c, int64_t ldc, const MatmulEpilogue& ep, int nt) {
  constexpr int MR = kMR, NR = kNR;
  constexpr int64_t kMaxRun = 8;  // panels per run
  const int64_t nsl = ceil_div(M, MR), npan = ceil_div(N, NR);
  const bool direct = a.cs == 1;
  const int64_t s_packed = direct ? M / MR : 0;  // first packed sliver
  float* abuf = nsl > s_packed
                    ? matmul_scratch(2, static_cast<std::size_t>((nsl - s_packed) * MR * K))
                    : nullptr;
  // Row blocks of <= kMC rows (one K block of them in L2), balanced.
  int64_t n_rb = ceil_div(nsl, kMC / MR);
  const int64_t rb = ceil_div(nsl, n_rb);
  n_rb = ceil_div(nsl, rb);
  const int64_t units = n_rb * npan;  // unit u: row block u / npan, panel u % npan
  std::atomic<int64_t> next{0};
  // Units [u0, u1): per row block met, its panels over the whole K.
  const auto run = [&](int64_t u0, int64_t u1) {
    while (u0 < u1) {
      const int64_t r = u0 / npan, p0 = u0 % npan;
      const int64_t p1 = u1 - r * npan < npan ? u1 - r * npan : npan;
      u0 = r * npan + p1;
      const int64_t s0 = r * rb, s1 = s0 + rb < nsl ? s0 + rb : nsl;
      for (int64_t k0 = 0; k0 < K; k0 += kPackedStep) {
        const int64_t k1 = K - k0 < kPackedStep ? K : k0 + kPackedStep;
        for (int64_t p = p0; p < p1; ++p) {
          const int64_t j = p * NR;
          const int n = static_cast<int>(N - j < NR ? N - j : NR);
          for (int64_t s = s0; s < s1; ++s) {
            const int64_t i = s * MR;
            const int m = static_cast<int>(M - i < MR ? M - i : MR);
            const TileEpilogue te = tile_epilogue(ep, i, j);
            for (int64_t pc = k0; pc < k1; pc += kKC) {
              const int64_t kc = k1 - pc < kKC ? k1 - pc : kKC;
              const bool accumulate = pc > 0, last = pc + kc == K;
              const float* bp = packed + p * K * NR + pc * NR;
              if (s < s_packed)
                direct_tile(kc, a.data + i * a.rs + pc, a.rs, bp, c + i * ldc + j, ldc, n,
                            accumulate, last ? &te : nullptr);
              else
                packed_tile(kc, abuf + (s - s_packed) * MR * K + pc * MR, bp,
                            c + i * ldc + j, ldc, m, n, accumulate, last ? &te : nullptr);
            }
          }
        }
      }
    }
  };
  run_team(nt, [&] {
    if (nsl > s_packed) {
#if defined(_OPENMP)
#pragma omp for schedule(static)
#endif
      for (int64_t s = s_packed; s < nsl; ++s) {
        const int64_t i = s * MR;
        pack_a<MR>(M - i < MR ? M - i : MR, K, a.data + i * a.rs, a.rs, a.cs,
                   abuf + (s - s_packed) * MR * K);
      }
    }
    for (;;) {
      int64_t u0 = next.load(std::memory_order_relaxed), len = 0;
      do {
        if (u0 >= units) break;
        len = (units - u0) / (2 * static_cast<int64_t>(nt));
        if (len < 1) len = 1;
        if (len > kMaxRun) len = kMaxRun;
      } while (!next.compare_exchange_weak(u0, u0 + len, std::memory_order_relaxed));
      if (u0 >= units) break;
      run(u0, u0 + len < units ? u0 + len : units);
    }
  });
}

void gemm_packed(int64_t M, int64_t N, int64_t K, StridedMatrix a, const float* packed, float* c,
                 int64_t ldc, const MatmulEpilogue& ep) {
  if (M <= 0 || N <= 0) return;
  if (K <= 0) return gemm_empty_k(M, N, c, ldc, ep);
  const int nt = threads_for_product(M, N, K);
  switch (M) {
    case 1: return gemm_packed_small_m<1>(M, N, K, a, packed, c, ldc, ep, nt);
    case 2: return gemm_packed_small_m<2>(M, N, K, a, packed, c, ldc, ep, nt);
    case 3: return gemm_packed_small_m<3>(M, N, K, a, packed, c, ldc, ep, nt);
    case 4: return gemm_packed_small_m<4>(M, N, K, a, packed, c, ldc, ep, nt);
    default: return gemm_prepacked(M, N, K, a, packed, c, ldc, ep, nt);
  }
}

}  // namespace

void register_kernels(MatmulKernels& t, Tag) {
  t.gemm = gemm;
  t.gemm_batched = gemm_batched;
  t.panel_width = panel_width;
  t.pack_b = pack_b;
  t.gemm_packed = gemm_packed;
}

}  // namespace FASTATTN_ISA_NAMESPACE
}  // namespace fastattn

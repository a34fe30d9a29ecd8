// M <= 4 (decode-time GEMV and tiny batches): C (M, N) = epilogue(A (M, K) @ B (K, N)).
//
// Bandwidth bound: every weight is used M <= 4 times, so the kernel's job is to read B once,
// in long contiguous runs, with enough independent accumulators and both cores streaming.
// Parallel over N (each thread a contiguous range of columns); no packing.
//   B rows contiguous along N ((K, N) weight, e.g. GPT-2 Conv1D): "axpy" form. Each thread
//     sweeps its column range row by row, 4 rows of B at a time, accumulating in C (which
//     stays in L1/L2): C[i, j] = ((C + a_ik0 b_k0j) + a_ik1 b_k1j) + ... - one FMA chain over
//     all k.
//   B columns contiguous along K ((N, K) weight read transposed, PyTorch Linear): dot form
//     (tinyBLAS-style). Each column j is a contiguous K-run; groups of columns x M rows of
//     vector accumulators, reduced with the fixed-order hsum at the end.
// Accuracy: the dot form sums Vec::size interleaved partial sums, then hsum - no worse than
// the sequential chain's K eps bound.
#include "core/parallel.h"
#include "kernels/matmul/internal.h"
#include "kernels/matmul/microkernel.h"

namespace fastattn {
namespace FASTATTN_ISA_NAMESPACE {
namespace {

constexpr int64_t kColumnGrain = 256;  // columns per thread at least (1 MiB of B for K = 1024)

// Columns [j0, j1): C[i, j] = sum_k A[i, k] B[k, j], B rows at b + k * ldb (contiguous).
template <int M>
void axpy_columns(int64_t K, StridedMatrix a, const float* b, int64_t ldb, float* c, int64_t ldc,
                  int64_t j0, int64_t j1) {
  constexpr int W = Vec::size;
  constexpr int KU = 4;
  for (int64_t k = 0; k < K; k += KU) {
    const int ku = static_cast<int>(K - k < KU ? K - k : KU);
    Vec av[M][KU];
    for (int i = 0; i < M; ++i)
      for (int u = 0; u < KU; ++u)
        av[i][u] = Vec::broadcast(u < ku ? a.data[i * a.rs + (k + u) * a.cs] : 0.0f);
    const float* bk = b + k * ldb;
    for (int64_t j = j0; j < j1; j += W) {
      const int cnt = static_cast<int>(j1 - j < W ? j1 - j : W);
      Vec acc[M];
      for (int i = 0; i < M; ++i) acc[i] = k == 0 ? Vec::zero() : load_n(c + i * ldc + j, cnt);
      if (ku == KU && cnt == W) {
#pragma GCC unroll 4
        for (int u = 0; u < KU; ++u) {
          const Vec bv = Vec::load(bk + u * ldb + j);
#pragma GCC unroll 4
          for (int i = 0; i < M; ++i) acc[i] = fmadd(av[i][u], bv, acc[i]);
        }
      } else {
        for (int u = 0; u < ku; ++u) {
          const Vec bv = load_n(bk + u * ldb + j, cnt);
          for (int i = 0; i < M; ++i) acc[i] = fmadd(av[i][u], bv, acc[i]);
        }
      }
      for (int i = 0; i < M; ++i) store_n(c + i * ldc + j, acc[i], cnt);
    }
  }
}

// Columns [j0, j1): C[i, j] = dot(A[i, :], B[:, j]), A rows contiguous (a + i * lda), column j
// of B contiguous at b + j * ldb.
template <int M>
void dot_columns(int64_t K, const float* a, int64_t lda, const float* b, int64_t ldb, float* c,
                 int64_t ldc, int64_t j0, int64_t j1) {
  constexpr int W = Vec::size;
  constexpr int JG = M <= 3 ? 4 : 3;  // M * JG <= 12 accumulators
  for (int64_t j = j0; j < j1; j += JG) {
    const int jn = static_cast<int>(j1 - j < JG ? j1 - j : JG);
    const float* col[JG];
    for (int g = 0; g < JG; ++g) col[g] = b + (j + (g < jn ? g : jn - 1)) * ldb;  // pad: repeat
    Vec acc[M][JG];
    for (int i = 0; i < M; ++i)
      for (int g = 0; g < JG; ++g) acc[i][g] = Vec::zero();
    int64_t k = 0;
    for (; k + W <= K; k += W) {
      Vec av[M];
#pragma GCC unroll 4
      for (int i = 0; i < M; ++i) av[i] = Vec::load(a + i * lda + k);
#pragma GCC unroll 4
      for (int g = 0; g < JG; ++g) {
        const Vec bv = Vec::load(col[g] + k);
#pragma GCC unroll 4
        for (int i = 0; i < M; ++i) acc[i][g] = fmadd(av[i], bv, acc[i][g]);
      }
    }
    if (k < K) {
      const int cnt = static_cast<int>(K - k);
      Vec av[M];
      for (int i = 0; i < M; ++i) av[i] = Vec::load_partial(a + i * lda + k, cnt);
      for (int g = 0; g < JG; ++g) {
        const Vec bv = Vec::load_partial(col[g] + k, cnt);
        for (int i = 0; i < M; ++i) acc[i][g] = fmadd(av[i], bv, acc[i][g]);
      }
    }
    for (int i = 0; i < M; ++i)
      for (int g = 0; g < jn; ++g) c[i * ldc + j + g] = hsum(acc[i][g]);
  }
}

template <int M>
void gemv_m(int64_t N, int64_t K, StridedMatrix a, StridedMatrix b, bool dot, float* c,
            int64_t ldc, const MatmulEpilogue& ep, int nt) {
  const float* ad = a.data;
  int64_t lda = a.rs;
  if (dot && a.cs != 1) {  // the dot form wants A's rows contiguous: copy them (M * K floats)
    float* buf = matmul_scratch(2, static_cast<std::size_t>(M * K));
    for (int i = 0; i < M; ++i)
      for (int64_t k = 0; k < K; ++k) buf[i * K + k] = a.data[i * a.rs + k * a.cs];
    ad = buf;
    lda = K;
  }
  // Columns in whole vectors per thread (an edge vector only at N's end).
  constexpr int W = Vec::size;
  const int64_t nvec = (N + W - 1) / W;
  const int64_t grain = nt > 1 ? kColumnGrain / W : nvec;
  const auto run = [&](int64_t v0, int64_t v1) {
    const int64_t j0 = v0 * W, j1 = v1 * W < N ? v1 * W : N;
    if (dot) dot_columns<M>(K, ad, lda, b.data, b.cs, c, ldc, j0, j1);
    else axpy_columns<M>(K, a, b.data, b.rs, c, ldc, j0, j1);
    epilogue_rows(c, ldc, M, 0, j0, j1, ep);
  };
  if (nt > 1) parallel_for(nvec, grain, run);
  else run(0, nvec);
}

}  // namespace

bool gemv_small_m(int64_t M, int64_t N, int64_t K, StridedMatrix a, StridedMatrix b, float* c,
                  int64_t ldc, const MatmulEpilogue& ep, int nt) {
  bool dot;
  if (b.cs == 1 && !(b.rs == 1 && N < K)) dot = false;
  else if (b.rs == 1) dot = true;
  else return false;
  switch (M) {
    case 1: gemv_m<1>(N, K, a, b, dot, c, ldc, ep, nt); return true;
    case 2: gemv_m<2>(N, K, a, b, dot, c, ldc, ep, nt); return true;
    case 3: gemv_m<3>(N, K, a, b, dot, c, ldc, ep, nt); return true;
    case 4: gemv_m<4>(N, K, a, b, dot, c, ldc, ep, nt); return true;
    default: return false;
  }
}

}  // namespace FASTATTN_ISA_NAMESPACE
}  // namespace fastattn

// matmul: C = epilogue(A @ B) for float32 strided views, plus batched and pre-packed-B forms.
//   C[i, j] = act(sum_k A[i, k] B[k, j] + bias[j]) + residual[i, j]
// A (M, K) and B (K, N) are read through arbitrary element strides (a transposed or sliced
// view needs no copy): A[i, k] = a.data[i * a.rs + k * a.cs]. C's rows are contiguous with row
// stride ldc. The epilogue's parts are optional (null pointers / Activation::none).
//
// Each C element is computed by a sequence of float32 operations fixed by the shape alone: in
// the blocked kernel an FMA chain from zero per KC block of k, the blocks added to C in k order;
// in the no-packing path (gemm.cpp gemm_direct: M x N <= 512^2, M > 4, K <= 256 or M <= 2 MR)
// the blocked kernel's chains and additions, so both give the same bits;
// in the M <= 4 paths one chain over all of k (axpy form and pre-packed panels) or Vec::size
// interleaved chains and a fixed-order hsum (dot form, B's columns contiguous). Then the
// epilogue, the same operations on every path. K is never split across threads, so results are
// bit-identical for any number of threads (and the path a shape takes does not depend on it).
#pragma once

#include <cstdint>

#include "core/isa.h"
#include "kernels/activation.h"

namespace fastattn {

struct StridedMatrix {
  const float* data;
  int64_t rs, cs;  // element (r, c) at data[r * rs + c * cs]; strides in elements, any sign
};

struct MatmulEpilogue {
  const float* bias = nullptr;      // (N,) contiguous, or null
  Activation activation = Activation::none;
  const float* residual = nullptr;  // (M, N): element (i, j) at residual[i * ld_residual + j]
  int64_t ld_residual = 0;
};

struct MatmulKernels {
  // One (M, K) @ (K, N) product into c (row stride ldc).
  void (*gemm)(int64_t M, int64_t N, int64_t K, StridedMatrix a, StridedMatrix b, float* c,
               int64_t ldc, const MatmulEpilogue& ep) = nullptr;
  // `batch` products of the same shape; product t reads a.data + a_off[t], b.data + b_off[t],
  // residual + r_off[t] (r_off may be null without a residual) and writes c + c_off[t].
  // Offsets in elements. Small products run one per thread, large ones one after the other.
  void (*gemm_batched)(int64_t batch, const int64_t* a_off, const int64_t* b_off,
                       const int64_t* c_off, const int64_t* r_off, int64_t M, int64_t N,
                       int64_t K, StridedMatrix a, StridedMatrix b, float* c, int64_t ldc,
                       const MatmulEpilogue& ep) = nullptr;
  // Pre-packed B: panels of panel_width() columns, each K rows of panel_width() floats
  // (zero-padded past N): packed[(j / NR) * K * NR + k * NR + j % NR] = B[k, j].
  int (*panel_width)() = nullptr;
  void (*pack_b)(int64_t K, int64_t N, StridedMatrix b, float* packed) = nullptr;
  void (*gemm_packed)(int64_t M, int64_t N, int64_t K, StridedMatrix a, const float* packed,
                      float* c, int64_t ldc, const MatmulEpilogue& ep) = nullptr;
};
FASTATTN_DECLARE_KERNEL_TABLE(MatmulKernels)

}  // namespace fastattn

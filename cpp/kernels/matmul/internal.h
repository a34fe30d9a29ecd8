// Helpers shared by the matmul kernel files (gemm.cpp, gemv.cpp) of one ISA path.
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernels/matmul/matmul.h"

namespace fastattn {
namespace FASTATTN_ISA_NAMESPACE {

// Per-thread scratch buffer `slot` (0: packed A, 1: packed B, 2: a contiguous copy of A), grown
// on demand and kept for the thread's life, so repeated calls do not pay malloc + page faults.
float* matmul_scratch(int slot, std::size_t count);

// C[i, j] = act(C[i, j] + bias[j]) + residual[row0 + i, j] for rows [0, m), columns [j0, j1):
// the epilogue for paths that accumulate C in memory (GEMV, K = 0).
void epilogue_rows(float* c, int64_t ldc, int64_t m, int64_t row0, int64_t j0, int64_t j1,
                   const MatmulEpilogue& ep);

// The M <= 4 path (decode): streams B once, parallel over N, no packing. Returns false (and
// does nothing) when B has no contiguous axis; the blocked kernel handles that case.
bool gemv_small_m(int64_t M, int64_t N, int64_t K, StridedMatrix a, StridedMatrix b, float* c,
                  int64_t ldc, const MatmulEpilogue& ep, int nt);

}  // namespace FASTATTN_ISA_NAMESPACE
}  // namespace fastattn
